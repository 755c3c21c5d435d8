// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Opens profilis-bpf's web page in Debian's headless chromium (playwright-core
// drives it; no browser is downloaded) and prints what a user sees, as JSON,
// for tests/integration/test_http.py to compare with metrics.json:
//   node check.js PAGE_URL_WITH_TOKEN SCREENSHOT.png [ROUTE_TO_CLICK]
// It also opens the page without the token in a fresh tab (no sessionStorage)
// and reports that answer's status.
"use strict";
const { chromium } = require("playwright-core");

async function main() {
  const [url, shot, click] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await ctx.newPage();
    const pageErrors = [];
    const requests = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
    page.on("request", (r) => requests.push(r.url()));
    const resp = await page.goto(url);
    await page.waitForFunction(() => Number(document.body.dataset.refreshes || 0) >= 2,
      null, { timeout: 20000 });
    const rows = await page.$$eval("#routes tbody tr", (trs) => trs.map((tr) => ({
      method: tr.dataset.method, route: tr.dataset.route, service: tr.dataset.service,
      count: Number(tr.dataset.count), shown: tr.querySelector("td.count").textContent })));
    const errorsShown = await page.$$eval("#errors tbody tr", (trs) => trs.length);
    const status = await page.textContent("#status");
    const totalShown = await page.textContent("#k-count");
    let hotTitle = null;
    if (click) {
      const before = Number(await page.getAttribute("body", "data-refreshes"));
      await page.click(`#routes tbody tr[data-route="${click}"]`);
      await page.waitForFunction((n) => Number(document.body.dataset.refreshes) > n, before);
      hotTitle = await page.textContent("#hot-title");
    }
    const hotRows = await page.$$eval("#hot tbody tr", (trs) => trs.length);
    await page.screenshot({ path: shot, fullPage: true });
    const urlAfter = page.url();
    const bare = new URL(url);
    bare.search = "";
    const page2 = await (await browser.newContext()).newPage();
    const noToken = await page2.goto(bare.toString());
    console.log(JSON.stringify({
      status: resp.status(), rows, errorsShown, statusText: status, totalShown, hotTitle,
      hotRows, urlAfter, requests, pageErrors, noTokenStatus: noToken.status(),
    }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
