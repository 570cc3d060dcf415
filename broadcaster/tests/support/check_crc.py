#!/usr/bin/python3
"""Independent CRC-32/MPEG-2 check of every PSI and private section in a transport stream.

Follows PAT -> PMTs -> PIDs of stream_type 0x05 (private sections) and 0x0D (DSM-CC
data carousels), reassembles their
sections with its own code, and checks each CRC with crcmod's 'crc-32-mpeg'. Prints a JSON
summary; exits 1 when any section fails or no section was found.

usage: check_crc.py FILE.ts
"""
import json
import sys

import crcmod.predefined

crc32 = crcmod.predefined.mkCrcFun("crc-32-mpeg")


def packets(data):
    for i in range(0, len(data) - 187, 188):
        p = data[i : i + 188]
        if p[0] != 0x47:
            raise SystemExit(f"lost sync at byte {i}")
        yield p


def payload(p):
    afc = (p[3] >> 4) & 3
    if afc in (0, 2):
        return None
    start = 4
    if afc == 3:
        start = 5 + p[4]
    return p[start:] if start < 188 else None


class Reassembler:
    def __init__(self):
        self.buf = None

    def feed(self, pl, pusi):
        out = []
        if pusi:
            ptr = pl[0]
            if self.buf is not None:
                self.buf += pl[1 : 1 + ptr]
                out += self.drain()
            self.buf = bytearray(pl[1 + ptr :])
        elif self.buf is not None:
            self.buf += pl
        else:
            return out
        out += self.drain()
        return out

    def drain(self):
        out = []
        while self.buf is not None and len(self.buf) >= 3:
            if self.buf[0] == 0xFF:
                self.buf = None
                break
            total = (((self.buf[1] & 0x0F) << 8) | self.buf[2]) + 3
            if len(self.buf) < total:
                break
            out.append(bytes(self.buf[:total]))
            self.buf = self.buf[total:]
        return out


def main(path):
    data = open(path, "rb").read()
    watched = {0: "PAT"}
    reasm = {}
    result = {"sections": 0, "bad": 0, "by_table": {}, "private_pids": [], "programs": {}}
    for p in packets(data):
        pid = ((p[1] & 0x1F) << 8) | p[2]
        if pid not in watched:
            continue
        pl = payload(p)
        if pl is None:
            continue
        pusi = bool(p[1] & 0x40)
        for s in reasm.setdefault(pid, Reassembler()).feed(pl, pusi):
            if not s[1] & 0x80:
                continue
            result["sections"] += 1
            ok = crc32(s[:-4]) == int.from_bytes(s[-4:], "big")
            key = f"{s[0]:#04x}"
            t = result["by_table"].setdefault(key, {"ok": 0, "bad": 0})
            t["ok" if ok else "bad"] += 1
            if not ok:
                result["bad"] += 1
                continue
            if s[0] == 0x00:
                body = s[8:-4]
                for i in range(0, len(body) - 3, 4):
                    prog = (body[i] << 8) | body[i + 1]
                    ppid = ((body[i + 2] & 0x1F) << 8) | body[i + 3]
                    if prog != 0:
                        watched.setdefault(ppid, "PMT")
            elif s[0] == 0x02:
                prog = (s[3] << 8) | s[4]
                pil = ((s[10] & 0x0F) << 8) | s[11]
                info = s[12 : 12 + pil]
                tags = []
                j = 0
                while j + 2 <= len(info):
                    tags.append(f"{info[j]:#04x}")
                    j += 2 + info[j + 1]
                result["programs"][str(prog)] = {"descriptors": tags}
                j = 12 + pil
                while j + 5 <= len(s) - 4:
                    st = s[j]
                    epid = ((s[j + 1] & 0x1F) << 8) | s[j + 2]
                    esl = ((s[j + 3] & 0x0F) << 8) | s[j + 4]
                    if st in (0x05, 0x0D):
                        watched.setdefault(epid, "private")
                        if epid not in result["private_pids"]:
                            result["private_pids"].append(epid)
                    j += 5 + esl
    print(json.dumps(result))
    return 1 if result["bad"] or not result["sections"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
