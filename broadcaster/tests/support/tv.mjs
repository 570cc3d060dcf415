#!/usr/bin/env node
// tv.mjs: a stock TV for broadcaster/tests/bml.rs that has been set up with a postal code.
// Runs web-bml (WEBBML_DIR/static, an independent BML engine) in Debian's Chromium through
// playwright-core (WEBBML_DRIVER_DIR), with the TV's receiver settings put where web-bml keeps
// them (localStorage, base64), then feeds it a transport stream and reads what the page shows.
//
//   node tv.mjs --ts out.ts --zipcode 0000001 --expect "警戒レベル4" --absent "警戒レベル5" \
//       --keys b,b --after "Level 4"
//
// --zipcode D7   nvram://receiverinfo/zipcode (7 ASCII digits; not given: none set up)
// --local0 N     nvram://local/0, a household number the page stored before (U:4B)
// --onid ID      the original_network_id NVRAM blocks are keyed by ("null": no SDT/NIT)
// --expect T     text the page must show (repeatable); --absent T: must not show, also after
//                --settle ms (default 1500) more
// --keys a,b     remote keys (playwright names: digits, Enter, x = Back, r g y b = red green
//                yellow blue), then --after T: text shown after them (repeatable); each --keys
//                starts a new step
// --answer-ca F  the TV's return channel: the page's browser.transmitTextDataOverIP POSTs over
//                real HTTPS from Node, trusting only the CA in PEM file F (web-bml's /play_local
//                gives its engine no IP stack: this is the TV's); each call prints
//                POST <uri> <body> and REPLY <resultCode> <statusCode> <text>
// --shot P      a screenshot after each step, P-<step>.png
// Prints TEXT[...] and CHECK lines, then RESULT PASS|FAIL (exit 0 / 1; 2: cannot run).
import { createRequire } from "node:module";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";

const o = { ts: null, answerCa: null, zipcode: null, local0: null, onid: "null", expect: [], absent: [], steps: [], timeout: 15000, settle: 1500 };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
    const [k, v] = [args[i], args[i + 1]];
    if (v === undefined) { console.error(`${k}: no value`); process.exit(2); }
    if (k === "--ts") o.ts = v;
    else if (k === "--zipcode") o.zipcode = v;
    else if (k === "--local0") o.local0 = Number(v);
    else if (k === "--onid") o.onid = v;
    else if (k === "--answer-ca") o.answerCa = fs.readFileSync(v);
    else if (k === "--expect") o.expect.push(v);
    else if (k === "--absent") o.absent.push(v);
    else if (k === "--keys") o.steps.push({ keys: v.split(","), after: [] });
    else if (k === "--after" && o.steps.length) o.steps[o.steps.length - 1].after.push(v);
    else if (k === "--timeout") o.timeout = Number(v);
    else if (k === "--settle") o.settle = Number(v);
    else if (k === "--shot") o.shot = v;
    else { console.error(`unknown option ${k}`); process.exit(2); }
}
const root = path.join(process.env.WEBBML_DIR ?? "", "static");
if (!o.ts || !fs.existsSync(o.ts) || !fs.existsSync(path.join(root, "play_local.html"))) {
    console.error("need --ts FILE and WEBBML_DIR with static/play_local.html");
    process.exit(2);
}
let playwright;
try {
    playwright = createRequire(path.join(process.env.WEBBML_DRIVER_DIR ?? "/opt/webbml-driver", "package.json"))("playwright-core");
} catch (e) {
    console.error(`playwright-core: ${e.message}`);
    process.exit(2);
}

// web-bml's NVRAM: localStorage keys "nvram_" + URL-encoded parameters, base64 values.
const local0Key = "nvram_" + new URLSearchParams({ original_network_id: o.onid, prefix: "local", block: "0" });
const zipKey = "nvram_" + new URLSearchParams({ prefix: "receiverinfo/zipcode" });
const b64 = (bytes) => Buffer.from(bytes).toString("base64");

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".woff2": "font/woff2" };
const server = http.createServer((req, res) => {
    let p = new URL(req.url, "http://tv").pathname;
    if (p === "/play_local") p = "/play_local.html";
    const f = path.join(root, path.normalize(decodeURIComponent(p)));
    if (!f.startsWith(root + path.sep) || !fs.statSync(f, { throwIfNoEntry: false })?.isFile()) {
        res.writeHead(404).end();
        return;
    }
    res.writeHead(200, { "Content-Type": types[path.extname(f)] ?? "application/octet-stream" });
    fs.createReadStream(f).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}/play_local`;

// The page's document is in a closed shadow root: read it through the DevTools protocol.
async function shown(cdp) {
    const { root: doc } = await cdp.send("DOM.getDocument", { depth: -1, pierce: true });
    const stack = [doc];
    let html = null;
    while (stack.length && !html) {
        const n = stack.pop();
        const cls = (n.attributes ?? []).find((_, i, a) => i % 2 === 1 && a[i - 1] === "class") ?? "";
        if (cls.split(/\s+/).includes("data-broadcasting-browser-content")) {
            html = n.shadowRoots?.[0]?.children?.find((c) => c.nodeName === "HTML") ?? null;
        }
        stack.push(...(n.children ?? []), ...(n.shadowRoots ?? []));
    }
    if (!html) return "";
    const { object } = await cdp.send("DOM.resolveNode", { backendNodeId: html.backendNodeId });
    const { result } = await cdp.send("Runtime.callFunctionOn", {
        objectId: object.objectId,
        functionDeclaration: "function () { return this.innerText; }",
        returnByValue: true,
    });
    return String(result.value ?? "");
}

let failed = 0;
const check = (what, ok, text) => {
    console.log(`CHECK ${ok ? "ok" : "FAIL"} ${what}` + (ok ? "" : `: ${JSON.stringify(text)}`));
    if (!ok) failed++;
};

async function until(cdp, label, want, absent) {
    const end = Date.now() + o.timeout;
    let text = await shown(cdp);
    while (!want.every((t) => text.includes(t)) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        text = await shown(cdp);
    }
    for (const t of want) check(`${label} shows ${JSON.stringify(t)}`, text.includes(t), text);
    if (absent.length) {
        await new Promise((r) => setTimeout(r, o.settle));
        text = await shown(cdp);
        for (const t of absent) check(`${label} does not show ${JSON.stringify(t)}`, !text.includes(t), text);
    }
    console.log(`TEXT[${label}]: ${JSON.stringify(text)}`);
}

// The TV's IP stack for ARIB's transmitTextDataOverIP: web-bml's engine calls
// `ip.transmitTextDataOverIP(uri, bodyBytes)` on the `ip` its embedder gave (on /play_local a
// plain `{}`, hence Object.prototype), awaits `{resultCode, statusCode, response: Uint8Array}`,
// and hands the page `[resultCode, statusCode, text]`. Node makes the real HTTPS POST.
async function returnChannel(page, ca) {
    await page.exposeFunction("evacTvPost", (uri, body) => new Promise((resolve) => {
        const bytes = Buffer.from(body);
        console.log(`POST ${uri} ${bytes.toString("latin1")}`);
        const done = (r) => {
            console.log(`REPLY ${r.resultCode} ${r.statusCode} ${JSON.stringify(Buffer.from(r.response).toString("latin1"))}`);
            resolve(r);
        };
        const fail = (e) => done({ resultCode: NaN, statusCode: "", response: [], error: String(e) });
        try {
            const req = https.request(uri, {
                method: "POST",
                ca,
                timeout: 10000,
                headers: { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": bytes.length },
            }, (res) => {
                const parts = [];
                res.on("data", (c) => parts.push(c));
                res.on("end", () => done({ resultCode: 1, statusCode: String(res.statusCode), response: [...Buffer.concat(parts).subarray(0, 4096)] }));
                res.on("error", fail);
            });
            req.on("timeout", () => req.destroy(new Error("timeout")));
            req.on("error", fail);
            req.end(bytes);
        } catch (e) {
            fail(e);
        }
    }));
    await page.addInitScript(() => {
        Object.defineProperty(Object.prototype, "transmitTextDataOverIP", {
            configurable: true,
            enumerable: false,
            writable: true,
            value: async function (uri, body) {
                const r = await window.evacTvPost(uri, Array.from(body));
                return { resultCode: r.resultCode ?? NaN, statusCode: r.statusCode, response: new Uint8Array(r.response) };
            },
        });
    });
}

const browser = await playwright.chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true });
try {
    const page = await browser.newPage();
    const logs = [];
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    if (o.answerCa) await returnChannel(page, o.answerCa);
    await page.goto(url);
    await page.evaluate(([entries]) => {
        localStorage.clear();
        for (const [k, v] of entries) localStorage.setItem(k, v);
    }, [[
        ...(o.zipcode == null ? [] : [[zipKey, b64([...o.zipcode].map((c) => c.charCodeAt(0)))]]),
        ...(o.local0 == null ? [] : [[local0Key, b64([o.local0 >>> 24, (o.local0 >>> 16) & 255, (o.local0 >>> 8) & 255, o.local0 & 255])]]),
    ]]);
    console.log(`SET ${o.zipcode == null ? "no zipcode" : `${zipKey}=${o.zipcode}`}, ${o.local0 == null ? "no number" : `${local0Key}=${o.local0}`}`);
    await page.goto(url);
    const cdp = await page.context().newCDPSession(page);
    await page.setInputFiles("#ts", o.ts);
    await until(cdp, "tuned", o.expect, o.absent);
    for (const step of o.steps) {
        for (const k of step.keys) {
            await page.keyboard.press(k);
            await page.waitForTimeout(60);
        }
        await until(cdp, `after ${step.keys.join(",")}`, step.after, []);
        if (o.shot) await page.screenshot({ path: `${o.shot}-${o.steps.indexOf(step)}.png` });
    }
    // What the engine said (its interpreter's errors among it), when something failed.
    if (failed) for (const l of logs.filter((l) => !l.includes("[console.debug]")).slice(-40)) console.log(l);
} finally {
    await browser.close();
    server.close();
}
console.log(`RESULT ${failed ? "FAIL" : "PASS"}`);
process.exit(failed ? 1 : 0);
