#!/usr/bin/env node
// anpi.mjs: a family at a browser, for the /anpi tests (evac_testkit::anpi_browser). Opens HQ's /anpi page in Debian's
// Chromium through playwright-core (WEBBML_DRIVER_DIR, default /opt/webbml-driver), fills the
// form and presses the button for each query, as a person would (no request made by hand).
//
//   node anpi.mjs --url https://localhost:PORT/anpi --ca ca.pem --queries queries.json
//
// queries.json: [{"lang": "en", "kana": "...", "birth": "YYYY-MM-DD", "family_code": ""}, ...]
// Prints one JSON line a query: {"status": 200, "result": "text of #result", "lang": "en"},
// then DONE (exit 0); exit 2 when it cannot run.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const o = { url: null, queries: null };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
    const [k, v] = [args[i], args[i + 1]];
    if (k === "--url") o.url = v;
    else if (k === "--queries") o.queries = v;
    else if (k === "--ca") o.ca = v; // the test's CA: Chromium is told to trust only it below
    else { console.error(`unknown option ${k}`); process.exit(2); }
}
if (!o.url || !o.queries) { console.error("need --url and --queries"); process.exit(2); }
let playwright;
try {
    playwright = createRequire(path.join(process.env.WEBBML_DRIVER_DIR ?? "/opt/webbml-driver", "package.json"))("playwright-core");
} catch (e) {
    console.error(`playwright-core: ${e.message}`);
    process.exit(2);
}
const queries = JSON.parse(fs.readFileSync(o.queries, "utf8"));
const browser = await playwright.chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
});
try {
    // The test's certificate is issued by a throwaway CA for localhost; the page is still
    // fetched over TLS.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    let shown = null;
    for (const q of queries) {
        // A reply page carries the form again: a new page only for another language.
        if (shown !== (q.lang ?? "ja")) {
            await page.goto(`${o.url}?lang=${encodeURIComponent(q.lang ?? "ja")}`);
            shown = q.lang ?? "ja";
        }
        await page.fill("#kana", q.kana ?? "");
        await page.fill("#birth", q.birth ?? "");
        await page.fill("#family_code", q.family_code ?? "");
        const [resp] = await Promise.all([page.waitForNavigation(), page.click("#ask")]);
        const result = (await page.locator("#result").count()) ? await page.locator("#result").innerText() : "";
        const lang = await page.getAttribute("html", "lang");
        console.log(JSON.stringify({ status: resp ? resp.status() : 0, result, lang }));
    }
    console.log("DONE");
} finally {
    await browser.close();
}
