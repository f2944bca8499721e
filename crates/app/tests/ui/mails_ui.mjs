// An importer's mails in Error, Reprocess and the Documents page's "Mail"
// link, in Debian's headless Chromium. The importer (app-only, on the
// emulator's mailbox) has run once: a newsletter with a PDF is in Error by
// its `*newsletter*` subject rule, a delivery note without attachment is in
// Error with nothing to import.
// Inputs (env): BASE_URL, EMAIL, PASSWORD, IMPORTER_ID, NEWSLETTER_SUBJECT,
// NOTE_SUBJECT, SCREENSHOT_DIR. Exits non-zero on the first failed
// expectation, saying which.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const env = process.env;
const { BASE_URL, IMPORTER_ID, NEWSLETTER_SUBJECT, NOTE_SUBJECT } = env;
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.log(`mails: ${name}`);
const importerUrl = `${BASE_URL}/ui/#/importers/${IMPORTER_ID}`;
// rows are found by their subject cell, whose text must be the subject exactly
const errorRow = (subject) => page.locator("#error-mails tr", { has: page.locator("[data-subject]", { hasText: subject }) });
const recentRow = (subject) => page.locator("#recent-mails tr", { has: page.locator("[data-subject]", { hasText: subject }) });
const errorSubjects = async () => page.locator("#error-mails [data-subject]").allTextContents();

try {
  step("sign in and open the importer");
  await page.goto(`${BASE_URL}/ui/login`);
  await page.fill('input[name="email"]', env.EMAIL);
  await page.fill('input[name="password"]', env.PASSWORD);
  await page.click('form[action="/ui/login"] button[type="submit"]');
  await page.waitForSelector("h1:has-text('Overview')");
  await page.goto(importerUrl);
  await page.waitForSelector("#importer-form");

  step("Mails in Error lists both mails with their reasons in plain words");
  await page.waitForSelector("#error-mails table");
  assert.deepEqual((await errorSubjects()).sort(), [NEWSLETTER_SUBJECT, NOTE_SUBJECT].sort());
  const newsletter = errorRow(NEWSLETTER_SUBJECT);
  assert.equal(await newsletter.locator("[data-reason-code]").textContent(), "rule:subject_block");
  assert.match(await newsletter.textContent(), /subject blocked/);
  assert.match(await newsletter.locator("[data-reason-detail]").textContent(), /\S{3,}/, "the reason's detail is shown");
  assert.match(await newsletter.textContent(), /billing@fabrikam\.example/);
  assert.equal(await newsletter.locator("b").count(), 0, "the subject's markup is shown as text, not rendered");
  const note = errorRow(NOTE_SUBJECT);
  assert.equal(await note.locator("[data-reason-code]").textContent(), "no_importable_attachment");
  assert.match(await note.textContent(), /nothing to import/);
  assert.match(await note.textContent(), /logistics@contoso\.com/);
  assert.equal(await page.locator("#error-mails [data-attempts]").count(), 0, "no attempts shown when there were none");
  assert.equal(await page.locator("#error-mails button:has-text('Reprocess')").count(), 2);
  assert.equal(await recentRow(NEWSLETTER_SUBJECT).locator('[data-state="error"]').count(), 1);
  assert.equal(await recentRow(NOTE_SUBJECT).locator('[data-state="error"]').count(), 1);
  await shot("mails-in-error");

  step("Reprocess of a mail another admin has already reprocessed shows the API's refusal");
  const noteId = await note.getAttribute("data-mail");
  const session = await (await page.request.get(`${BASE_URL}/ui/session`)).json();
  const elsewhere = await page.request.post(
    `${BASE_URL}/api/v2/importers/email/${IMPORTER_ID}/mails/${encodeURIComponent(noteId)}/reprocess`,
    { headers: { "X-CSRF-Token": session.csrf_token } });
  assert.equal(elsewhere.status(), 202, await elsewhere.text());
  await note.locator("button:has-text('Reprocess')").click();
  await page.waitForSelector("#reprocess-result.bad");
  assert.match(await page.textContent("#reprocess-result"), /not in Error/);
  assert.match(await page.textContent("#reprocess-result"), new RegExp(NOTE_SUBJECT));
  await page.waitForFunction((s) => ![...document.querySelectorAll("#error-mails [data-subject]")].some((e) => e.textContent === s), NOTE_SUBJECT);
  assert.deepEqual(await errorSubjects(), [NEWSLETTER_SUBJECT], "the list was refreshed");
  await shot("reprocess-refused");

  step("the admin removes the subject rule in the form and saves");
  assert.equal(await page.inputValue('[data-field="rules.subject_block"]'), "*newsletter*");
  await page.fill('[data-field="rules.subject_block"]', "");
  await page.click('#importer-form button[type="submit"]');
  await page.waitForSelector("#form-notice .notice.ok:has-text('Saved.')");
  assert.equal(await page.inputValue('[data-field="rules.subject_block"]'), "");
  await errorRow(NEWSLETTER_SUBJECT).waitFor();

  step("Reprocess puts the newsletter back in the Inbox and the list says so");
  await errorRow(NEWSLETTER_SUBJECT).locator("button:has-text('Reprocess')").click();
  await page.waitForSelector("#reprocess-result.ok");
  assert.match(await page.textContent("#reprocess-result"), /Back in the Inbox: the next import decides it again/);
  await page.waitForSelector("#no-error-mails:has-text('No mail is in Error.')");
  assert.equal(await recentRow(NEWSLETTER_SUBJECT).locator('[data-state="pending"]').count(), 1);
  assert.equal(await recentRow(NOTE_SUBJECT).locator('[data-state="pending"]').count(), 1);
  await shot("reprocessed");

  step("running import-emails from the Scripts page succeeds");
  await page.click("nav >> text=Scripts");
  await page.click('form[data-script="import-emails"] button:has-text("Run now")');
  await page.waitForSelector("#exec-status");
  await page.waitForSelector("#exec-status:not(:has-text('running'))", { timeout: 60000 });
  assert.equal(await page.textContent("#exec-status"), "succeeded", await page.textContent("pre.log"));

  step("the newsletter is imported now; the note is in Error again, for its own reason");
  await page.goto(importerUrl);
  await page.waitForSelector("#error-mails table");
  assert.deepEqual(await errorSubjects(), [NOTE_SUBJECT]);
  assert.equal(await errorRow(NOTE_SUBJECT).locator("[data-reason-code]").textContent(), "no_importable_attachment");
  const imported = recentRow(NEWSLETTER_SUBJECT);
  assert.equal(await imported.locator('[data-state="exported"]').count(), 1);
  const documentId = (await imported.locator("[data-document-id]").textContent()).trim();
  assert.ok(documentId.length > 0);
  await shot("after-import");

  step("the Documents page lists the document with a Mail link to its mail");
  await page.click("nav >> text=Documents");
  await page.waitForSelector("h1:has-text('Documents')");
  const docRow = page.locator(`tr[data-document="${documentId}"]`);
  assert.match(await docRow.textContent(), /invoice-march\.pdf/);
  assert.equal(await page.locator("tr[data-document]").count(), 1);
  await shot("documents");
  await docRow.locator("a:has-text('Mail')").click();
  await page.waitForURL((url) => url.hash === `#/importers/${IMPORTER_ID}/mails?document_id=${encodeURIComponent(documentId)}`);
  await page.waitForSelector("#mail-focus table");
  const focus = page.locator("#mail-focus");
  assert.deepEqual(await focus.locator("[data-subject]").allTextContents(), [NEWSLETTER_SUBJECT]);
  assert.equal(await focus.locator('[data-state="exported"]').count(), 1);
  assert.match(await focus.textContent(), new RegExp(documentId));
  assert.match(await focus.textContent(), /<newsletter-3@fabrikam\.example>/);
  const where = await focus.evaluate((e) => ({ top: e.getBoundingClientRect().top, height: window.innerHeight, y: window.scrollY, doc: document.body.scrollHeight }));
  // Aligned to the top, give or take a fraction of a pixel.
  assert.ok(where.top > -1 && where.top < where.height, `the page is scrolled to the mail: ${JSON.stringify(where)}`);
  await shot("document-mail");

  step("a document that no mail of this importer made shows no mail");
  await page.goto(`${importerUrl}/mails?document_id=no-such-document`);
  await page.waitForSelector("#mail-focus:has-text('No mail of this importer made this document.')");
  assert.equal(await page.locator("#mail-focus tr[data-mail]").count(), 0);

  console.log("mails: all steps passed");
} catch (err) {
  await shot("failure").catch(() => {});
  console.error(`mails: FAILED: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
