#!/usr/bin/env python3
"""Checks a PFIF 1.4 document against the structure of the PFIF 1.4 schema
(http://zesty.ca/pfif/1.4/, the xsd:sequence of person and note), read with Python's own
XML parser, independently of the Rust writer that made it: the namespace, the root, each
record's required fields, the order of its fields, no unknown field, the status vocabulary and
the date format. Prints one line per problem; exits 1 if there is any."""
import re
import sys
import xml.etree.ElementTree as ET

NS = "http://zesty.ca/pfif/1.4"
PERSON = ["person_record_id", "entry_date", "expiry_date", "author_name", "author_email",
          "author_phone", "source_name", "source_date", "source_url", "full_name",
          "given_name", "family_name", "alternate_names", "description", "sex",
          "date_of_birth", "age", "home_street", "home_neighborhood", "home_city",
          "home_state", "home_postal_code", "home_country", "photo_url", "profile_urls", "note"]
NOTE = ["note_record_id", "person_record_id", "linked_person_record_id", "entry_date",
        "author_name", "author_email", "author_phone", "source_date", "author_made_contact",
        "status", "email_of_found_person", "phone_of_found_person", "last_known_location",
        "text", "photo_url"]
REQUIRED_PERSON = ["person_record_id", "source_date", "full_name"]
REQUIRED_NOTE = ["note_record_id", "author_name", "source_date", "text"]
STATUS = {"information_sought", "is_note_author", "believed_alive", "believed_missing",
          "believed_dead"}
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
AGE = re.compile(r"^\d+(-\d+)?$")

problems = []


def local(el):
    if not el.tag.startswith("{" + NS + "}"):
        problems.append(f"{el.tag}: not in the PFIF 1.4 namespace")
        return el.tag
    return el.tag[len(NS) + 2:]


def check(el, order, required, what):
    names = [local(c) for c in el]
    for r in required:
        if r not in names:
            problems.append(f"{what}: missing required {r}")
    positions = []
    for n in names:
        if n not in order:
            problems.append(f"{what}: unknown field {n}")
        else:
            positions.append(order.index(n))
    if positions != sorted(positions):
        problems.append(f"{what}: fields out of the schema's order: {names}")
    for c in el:
        n = local(c)
        if n != "note" and n in names and names.count(n) > 1:
            problems.append(f"{what}: {n} more than once")
        if n.endswith("_date") and n != "date_of_birth" and not DATE.match(c.text or ""):
            problems.append(f"{what}: {n} {c.text!r} is not YYYY-MM-DDThh:mm:ssZ")
        if n == "status" and c.text not in STATUS:
            problems.append(f"{what}: status {c.text!r}")
        if n == "author_made_contact" and c.text not in ("true", "false"):
            problems.append(f"{what}: author_made_contact {c.text!r}")
        if n == "age" and not AGE.match(c.text or ""):
            problems.append(f"{what}: age {c.text!r}")


root = ET.parse(sys.argv[1]).getroot()
if local(root) != "pfif":
    problems.append("root is not pfif:pfif")
persons = 0
for p in root:
    if local(p) != "person":
        problems.append(f"unexpected top-level {p.tag}")
        continue
    persons += 1
    pid = p.findtext(f"{{{NS}}}person_record_id")
    check(p, PERSON, REQUIRED_PERSON, f"person {pid}")
    for n in p.findall(f"{{{NS}}}note"):
        check(n, NOTE, REQUIRED_NOTE, f"note {n.findtext(f'{{{NS}}}note_record_id')}")
        if n.findtext(f"{{{NS}}}person_record_id") != pid:
            problems.append(f"note of {pid} names another person")
for line in problems:
    print(line)
print(f"{persons} persons checked", file=sys.stderr)
sys.exit(1 if problems else 0)
