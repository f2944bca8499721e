// The seed manual's story in a real browser: open the importer, press
// Authenticate, sign in at (emulated) Microsoft with the real login and
// consent pages, come back and see that mailferry is authorized, then run
// the Mail connection test and pick a folder from the mailbox's tree.
// Inputs (env): BASE_URL, EMAIL, PASSWORD, IMPORTER_ID, MS_USER, MS_PASSWORD, SCREENSHOT_DIR.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const env = process.env;
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
const shot = (name) => page.screenshot({ path: `${env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.log(`seed: ${name}`);

try {
  step("sign in to mailferry and open the importer");
  await page.goto(`${env.BASE_URL}/ui/login`);
  await page.fill('input[name="email"]', env.EMAIL);
  await page.fill('input[name="password"]', env.PASSWORD);
  await page.click('form[action="/ui/login"] button[type="submit"]');
  await page.waitForSelector("h1:has-text('Overview')");
  await page.goto(`${env.BASE_URL}/ui/#/importers/${env.IMPORTER_ID}`);
  await page.waitForSelector("#auth-state[data-state='unauthenticated']");

  step("before signing in, the connection test fails the token and does not check the rest");
  await page.click("#test");
  await page.waitForSelector("#test-card");
  assert.match(await page.textContent("#test-card h2"), /failed/);
  assert.equal(await page.locator("#test-card [data-check='token'][data-status='failed'] .badge.bad").textContent(), "failed");
  const skipped = page.locator("#test-card [data-status='not_checked']");
  assert.ok(await skipped.count() >= 3, "the folders are not checked");
  for (const badge of await skipped.locator(".badge").all()) {
    assert.equal(await badge.textContent(), "not checked");
    assert.equal(await badge.getAttribute("class"), "badge neutral");
  }
  assert.equal(await page.locator("#test-card .checks .badge.bad").count(), 1, "only the token failed");

  step("Authenticate leads to Microsoft's sign-in; the account is chosen, not assumed");
  await page.click("#authenticate");
  await page.waitForURL((url) => !url.href.startsWith(env.BASE_URL));
  if (await page.isVisible("#other")) await page.click("#other");
  await page.waitForSelector("#passwd");
  await page.fill("#login", env.MS_USER);
  await page.fill("#passwd", env.MS_PASSWORD);
  await shot("microsoft-sign-in");
  await page.click("#signin");

  step("consent, then back at mailferry's page saying it is authorized, as whom");
  await page.waitForSelector("#accept, h1");
  if (await page.isVisible("#accept")) {
    await shot("microsoft-consent");
    await page.click("#accept");
  }
  await page.waitForSelector("h1:has-text('mailferry is authorized')");
  assert.match(await page.textContent("body"), new RegExp(env.MS_USER));
  await shot("authorized");

  step("the importer's status shows the grant");
  await page.click("#back");
  await page.goto(`${env.BASE_URL}/ui/#/importers/${env.IMPORTER_ID}`);
  await page.waitForSelector("#auth-state[data-state='authorized']");
  assert.match(await page.textContent("#status"), new RegExp(env.MS_USER));

  step("the Mail connection test passes every check");
  await page.click("#test");
  await page.waitForSelector("#test-card");
  assert.match(await page.textContent("#test-card h2"), /passed/);
  assert.equal(await page.locator("#test-card .badge.bad").count(), 0);
  await shot("connection-test");

  step("the folder picker shows the mailbox's tree and fills the setting");
  await page.click('[data-pick="exported"]');
  await page.waitForSelector("#folder-picker [data-path='Exported']");
  await shot("folder-picker");
  await page.click("#folder-picker [data-path='Exported']");
  assert.equal(await page.inputValue('[data-field="folders.exported"]'), "Exported");

  console.log("seed: all steps passed");
} catch (err) {
  await shot("failure").catch(() => {});
  console.error(`seed: FAILED: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
