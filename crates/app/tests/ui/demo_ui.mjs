// `mailferry demo` as a newcomer meets it: sign in with the printed admin,
// Authenticate the demo importer at the emulated Microsoft, run the import
// from the Scripts page, and find the importer's mails in Exported and in
// Error with their reasons in plain words.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const env = process.env;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
page.setDefaultTimeout(20000);
const shot = (name) => page.screenshot({ path: `${env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.log(`demo: ${name}`);
const errorRow = (subject) => page.locator("#error-mails tr", { has: page.locator("[data-subject]", { hasText: subject }) });
const recentRow = (subject) => page.locator("#recent-mails tr", { has: page.locator("[data-subject]", { hasText: subject }) });

try {
  step("sign in as the printed admin");
  await page.goto(`${env.BASE_URL}/ui/login`);
  await page.fill('input[name="email"]', env.EMAIL);
  await page.fill('input[name="password"]', env.PASSWORD);
  await page.click('form[action="/ui/login"] button[type="submit"]');
  await page.waitForSelector("h1:has-text('Overview')");

  step("Authenticate the demo importer at the emulated Microsoft");
  await page.goto(`${env.BASE_URL}/ui/#/importers/${env.IMPORTER_ID}`);
  await page.waitForSelector("#auth-state[data-state='unauthenticated']");
  await page.click("#authenticate");
  await page.waitForURL((url) => !url.href.startsWith(env.BASE_URL));
  if (await page.isVisible("#other")) await page.click("#other");
  await page.waitForSelector("#passwd");
  await page.fill("#login", env.MS_USER);
  await page.fill("#passwd", env.MS_PASSWORD);
  await page.click("#signin");
  await page.waitForSelector("#accept, h1");
  if (await page.isVisible("#accept")) await page.click("#accept");
  await page.waitForSelector("h1:has-text('mailferry is authorized')");

  step("the first import, from the Scripts page");
  await page.goto(`${env.BASE_URL}/ui/#/scripts`);
  const form = page.locator('form[data-script="import-emails"]');
  await form.locator("button:has-text('Run now')").click();
  await page.waitForSelector("#exec-status:not([data-status='running'])", { timeout: 60000 });
  assert.equal(await page.textContent("#exec-status"), "succeeded", await page.textContent("pre.log"));

  step("the importer's mails: imported ones, and Error with reasons in plain words");
  await page.goto(`${env.BASE_URL}/ui/#/importers/${env.IMPORTER_ID}/mails`);
  await page.waitForSelector("#error-mails table");
  const expectedErrors = [
    ["Northwind newsletter: spring catalogue", "rule:subject_block", /subject blocked/],
    ["Invoice attached (urgent)", "rule:sender_allow", /sender not allowed/],
    ["Question about invoice RE-2026-0042", "no_importable_attachment", /nothing to import/],
  ];
  for (const [subject, code, words] of expectedErrors) {
    const row = errorRow(subject);
    assert.equal(await row.count(), 1, `${subject} is in Error`);
    assert.equal(await row.locator("[data-reason-code]").textContent(), code);
    assert.match(await row.textContent(), words);
  }
  assert.equal(await page.locator("#error-mails button:has-text('Reprocess')").count(), await page.locator("#error-mails tr[data-mail]").count());
  for (const subject of ["Invoice RE-2026-0042", "Scanned document"]) {
    assert.equal(await recentRow(subject).locator('[data-state="exported"]').count(), 1, `${subject} is imported`);
  }
  await shot("demo-first-import");

  step("the overview shows the importer healthy after its first import");
  await page.goto(`${env.BASE_URL}/ui/#/overview`);
  await page.waitForSelector(`[data-importer="${env.IMPORTER_ID}"]`);
  assert.match(await page.textContent(`[data-importer="${env.IMPORTER_ID}"]`), /imported/);
  console.log("demo: ok");
} catch (e) {
  await shot("demo-failure").catch(() => {});
  console.log(`demo: FAILED: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
