// Signs in to a running `vellum serve`, reads the transfer list, opens the failed transfer,
// reads its failure reason, and takes a screenshot; prints what it saw as one JSON line.
// usage: node dashboard.mjs URL USER KEY SCREENSHOT
import { chromium } from "playwright-core";

const [url, user, key, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.VELLUM_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const seen = { dialogs: [], errors: [], blocked: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 820 } });
  page.on("dialog", (d) => { seen.dialogs.push(d.message()); d.dismiss(); });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) seen.errors.push(m.text());
  });
  page.on("requestfailed", (r) => seen.blocked.push(r.url()));
  // What the pages asked for that was not there (the sign-in redirect aside).
  page.on("response", (r) => { if (r.status() >= 400) seen.errors.push(r.status() + " " + r.url()); });

  await page.goto(url + "/");
  seen.sentToSignIn = new URL(page.url()).pathname === "/sign-in";
  await page.fill("input[name=user]", user);
  await page.fill("input[name=key]", key);
  await Promise.all([page.waitForURL(url + "/"), page.click("form.sign-in button[type=submit]")]);
  seen.rows = await page.$$eval("table.transfers tbody tr[data-id]", (rows) =>
    rows.map((row) => ({
      name: row.querySelector("a").textContent,
      status: row.querySelector("[data-field=status]").textContent,
    })),
  );
  await page.screenshot({ path: screenshot, fullPage: true });

  await Promise.all([
    page.waitForURL(/\/transfers\//),
    page.click('table.transfers tbody tr:has([data-field=status]:text-is("FAILED")) a'),
  ]);
  seen.failedPage = await page.textContent("h1");
  seen.reason = (await page.textContent("section.failure p")).trim();
  seen.jobRows = await page.$$eval("table.jobs tbody tr", (rows) => rows.length);
  seen.fileRows = await page.$$eval("table.files tbody tr", (rows) => rows.length);
  seen.cookie = (await page.context().cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  seen.scriptFromPage = await page.evaluate(() => typeof window.__vellumInjected);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
