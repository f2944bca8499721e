// Drives the admin UI as an admin would, in Debian's headless Chromium.
// Inputs (env): BASE_URL, EMAIL, PASSWORD, SCREENSHOT_DIR. Exits non-zero on
// the first failed expectation, saying which.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { BASE_URL, EMAIL, PASSWORD, SCREENSHOT_DIR, ALERT_WEBHOOK } = process.env;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
const shot = (name) => page.screenshot({ path: `${SCREENSHOT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.log(`ui: ${name}`);

try {
  step("the app sends a signed-out admin to the sign-in page");
  await page.goto(`${BASE_URL}/ui/`);
  await page.waitForURL(/\/ui\/login$/);

  step("a wrong password is refused with a message");
  await page.fill('input[name="email"]', EMAIL);
  await page.fill('input[name="password"]', "wrong password!!");
  await page.click('button[type="submit"]');
  await page.waitForSelector("text=Wrong e-mail address or password.");

  step("signing in shows the overview; the importer list is a click away");
  await page.fill('input[name="email"]', EMAIL);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForSelector("h1:has-text('Overview')");
  assert.match(await page.textContent("#who"), new RegExp(EMAIL));
  await page.waitForSelector("text=No importer yet.");
  await page.click("nav >> text=E-mail importers");
  await page.waitForSelector("h1:has-text('E-mail importers')");
  await page.waitForSelector("text=No importer yet.");

  step("a new importer with mistakes shows every bad field next to it, and nothing is saved");
  await page.click("text=New importer");
  await page.waitForSelector("#importer-form");
  await page.fill('[data-field="name"]', "Invoices");
  await page.fill('[data-field="client_id"]', "my-app");
  await page.fill('[data-field="tenant_id"]', "contoso.onmicrosoft.com");
  await page.fill('[data-field="client_secret"]', "Azure-Secret-Value~UI");
  await page.fill('[data-field="folders.exported"]', "Inbox");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector('[data-error="client_id"]:not(:empty)');
  assert.match(await page.textContent('[data-error="client_id"]'), /Application \(client\) ID/);
  assert.match(await page.textContent('[data-error="folders.exported"]'), /must differ from folders.inbox/);
  await shot("importer-form-errors");

  step("fixing the fields saves; the seed's dialog offers authentication, and it can be declined");
  await page.fill('[data-field="client_id"]', "11111111-2222-3333-4444-555555555555");
  await page.fill('[data-field="folders.exported"]', "Inbox/Exported");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector("#auth-prompt");
  assert.match(await page.textContent("#auth-prompt"), /Start the authentication now\?/);
  const authHref = await page.getAttribute("#auth-prompt a", "href");
  assert.match(authHref, /\/api\/v2\/importers\/email\/[^/]+\/authenticate$/);
  assert.match(await page.textContent("#redirect-uri"), /\/api\/v2\/importers\/email\/authenticate\/end$/);
  await shot("importer-saved-auth-prompt");
  await page.click("#decline");
  await page.waitForSelector("text=You can authenticate later");
  assert.equal(await page.isVisible("#authenticate"), true, "the Authenticate button stays available");

  step("rules, attachment extensions and a webhook sink are saved and shown again");
  await page.fill('[data-field="rules.sender_allow"]', "*@contoso.com, billing@fabrikam.com");
  await page.fill('[data-field="attachments.allowed_extensions"]', "pdf, xml");
  assert.equal(await page.isVisible('[data-field="sink.url"]'), false, "webhook fields hidden for the spool");
  await page.selectOption('[data-field="sink.kind"]', "webhook");
  await page.fill('[data-field="sink.url"]', "ftp://dms.example.com");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector('[data-error="sink.url"]:not(:empty)');
  await page.fill('[data-field="sink.url"]', "https://dms.example.com/inbox");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector("#form-notice .notice");
  await page.reload();
  await page.waitForSelector("#importer-form");
  assert.equal(await page.inputValue('[data-field="rules.sender_allow"]'), "*@contoso.com, billing@fabrikam.com");
  assert.equal(await page.inputValue('[data-field="attachments.allowed_extensions"]'), "pdf, xml");
  assert.equal(await page.inputValue('[data-field="sink.url"]'), "https://dms.example.com/inbox");

  step("the secret is never shown again, and the list shows the importer needs authentication");
  assert.equal(await page.inputValue('[data-field="client_secret"]'), "");
  assert.match(await page.textContent('[data-wrap="client_secret"]'), /stored — leave empty to keep it/);
  await page.click("text=Back");
  await page.waitForSelector("text=authentication required");
  await shot("importer-list");

  step("a ZIP password is saved write-only and kept when the form is saved again");
  await page.click("text=Invoices");
  await page.waitForSelector("#importer-form");
  await page.click("#zip-add");
  await page.locator('[data-zip-row] [data-zip="sender"]').last().fill("*@supplier.example");
  await page.locator('[data-zip-row] [data-zip="password"]').last().fill("zip-secret-UI");
  await page.selectOption('[data-field="smime.on_bad_signature"]', "import");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector("#form-notice .notice");
  await page.reload();
  await page.waitForSelector("#importer-form");
  assert.equal(await page.locator('[data-zip="sender"]').first().inputValue(), "*@supplier.example");
  assert.equal(await page.locator('[data-zip="password"]').first().inputValue(), "");
  assert.equal(await page.locator('[data-zip="password"]').first().getAttribute("placeholder"), "stored — leave empty to keep");
  assert.equal(await page.inputValue('[data-field="smime.on_bad_signature"]'), "import");
  assert.equal((await page.content()).includes("zip-secret-UI"), false, "the password is never sent back");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector("#form-notice .notice");
  await page.click("text=Back");
  await page.waitForSelector("text=authentication required");

  step("switching the protocol to IMAP shows the IMAP fields only");
  await page.click("text=Invoices");
  await page.waitForSelector("#importer-form");
  await page.selectOption('[data-field="protocol"]', "imap");
  assert.equal(await page.isVisible('[data-field="host"]'), true);
  assert.equal(await page.isVisible('[data-field="client_id"]'), false);
  assert.equal(await page.isVisible("#authenticate"), false);

  step("the Jobs page shows the default jobs and explains */50 in plain words");
  await page.click("nav >> text=Jobs");
  await page.waitForSelector("h1:has-text('Jobs')");
  const refreshRow = page.locator("tr", { has: page.locator("code", { hasText: "refresh-tokens" }) });
  await refreshRow.locator("[data-desc]:has-text('at minutes 0 and 50 of every hour')").waitFor();
  await shot("jobs");

  step("an invalid cron expression is refused with the field and the reason; a valid one is saved");
  await refreshRow.locator('[data-k="cron"]').fill("0 24 * * *");
  await refreshRow.locator("[data-save]").click();
  await refreshRow.locator('[data-err="cron"]:has-text("field 2 (hour)")').waitFor();
  await refreshRow.locator('[data-k="cron"]').fill("*/30 * * * *");
  await refreshRow.locator("[data-save]").click();
  await refreshRow.locator("[data-desc]:has-text('every 30 minutes')").waitFor();
  assert.equal(await refreshRow.locator('[data-err="cron"]').textContent(), "");

  step("the Scripts page lists scripts; running one without its required parameter says which");
  await page.click("nav >> text=Scripts");
  await page.waitForSelector("code:has-text('purge-documents')");
  await page.click('form[data-script="purge-documents"] button:has-text("Run now")');
  await page.waitForSelector("#run-result .notice:has-text('retention_days')");
  assert.match(await page.textContent('form[data-script="purge-documents"] [data-error="retention_days"]'), /\S/, "the field itself says what is wrong");
  await shot("scripts");

  step("the audit log names who created and changed the importer, and the failed sign-in");
  await page.click("text=Audit log");
  await page.waitForSelector("h1:has-text('Audit log')");
  await page.waitForSelector('tr[data-audit="importer.created"]');
  assert.match(await page.textContent('tr[data-audit="importer.updated"]'), /admin@example\.com/);
  assert.match(await page.textContent('tr[data-audit="signin.failed"]'), /admin@example\.com/);
  assert.equal((await page.content()).includes("Azure-Secret-Value~UI"), false, "no secret in the log");
  // Times in words and the browser's zone, UTC on hover.
  const created = 'tr[data-audit="importer.created"] time';
  assert.match(await page.getAttribute(created, "title"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(UTC\)$/);
  assert.match(await page.textContent(created), /ago|now/);
  await shot("audit");

  step("alert targets are saved with bad fields named, and a test alert reaches the webhook");
  await page.click("text=Alerts");
  await page.waitForSelector("h1:has-text('Alerts')");
  await page.fill('[data-field="webhook_url"]', "ftp://nowhere");
  await page.click("#alert-settings button[type=submit]");
  await page.waitForSelector("#alert-result .notice.bad:has-text('webhook_url')");
  await page.click("#test-alert");
  await page.waitForSelector("#alert-result .notice.bad:has-text('no alert target')");
  await page.fill('[data-field="webhook_url"]', ALERT_WEBHOOK);
  await page.click("#alert-settings button[type=submit]");
  await page.waitForSelector("#alert-result .notice:not(:has-text('no alert target'))");
  assert.match(await page.textContent("#alert-result"), /Saved/);
  await page.click("#test-alert");
  await page.waitForSelector("#alert-result .notice.ok:has-text('Test alert sent to webhook')");
  await shot("alerts");

  console.log("ui: all steps passed");
} catch (err) {
  await shot("failure").catch(() => {});
  console.error(`ui: FAILED: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
