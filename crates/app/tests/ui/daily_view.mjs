// The admin's daily view in Debian's headless Chromium: the overview's
// badges, countdowns and order, an importer's health, runs and dry run,
// document search, preview and download, scripts run from their parameter
// forms, jobs added and deleted, executions filtered, the phone layout,
// and axe-core on every page (any serious or critical violation fails).
// Inputs (env): BASE_URL, EMAIL, PASSWORD, HEALTHY_ID (Invoices, imported
// twice, two more mails waiting), THROTTLED_ID (Bob's receipts, a 429 with
// Retry-After 900 s), REVOKED_ID (Shared mailbox, reauth_required),
// IDLE_ID (Dave's mailbox, authorized, refresh token 85 days idle),
// ORIGINAL_PDF (the invoice's bytes), AXE_PATH, SCREENSHOT_DIR.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

const env = process.env;
const { BASE_URL } = env;
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.log(`daily: ${name}`);
const axeSource = await readFile(env.AXE_PATH, "utf8");
const axeFindings = [];

// axe-core in the page (evaluated through the DevTools protocol, so the
// page's CSP stays as it is); serious and critical violations are kept.
async function axeCheck(name) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"], iframes: false })).violations
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })));
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of violations) console.log(`daily: axe ${name}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
  axeFindings.push(...bad.map((v) => `${name}: ${v.impact} ${v.id} — ${v.help} at ${v.nodes.join(", ")}`));
}

const row = (id) => page.locator(`#overview tr[data-importer="${id}"]`);

try {
  step("sign in: the overview is the start page");
  await page.goto(`${BASE_URL}/ui/login`);
  await page.fill('input[name="email"]', env.EMAIL);
  await page.fill('input[name="password"]', env.PASSWORD);
  await page.click('form[action="/ui/login"] button[type="submit"]');
  await page.waitForSelector("h1:has-text('Overview')");
  await page.waitForSelector("#overview");
  assert.match(page.url(), /\/ui\/(#\/(overview)?)?$/);

  step("each importer has its badge; problems come first");
  const order = await page.locator("#overview tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.importer));
  assert.deepEqual(order, [env.REVOKED_ID, env.THROTTLED_ID, env.IDLE_ID, env.HEALTHY_ID],
    "re-authentication first, then throttled, then healthy (with warnings before without)");
  assert.equal(await row(env.HEALTHY_ID).locator(".badge[data-state]").textContent(), "healthy");
  assert.equal(await row(env.REVOKED_ID).locator(".badge[data-state]").textContent(), "re-authentication required");
  assert.match(await row(env.REVOKED_ID).locator("[data-detail]").textContent(), /AADSTS700082/, "with Microsoft's reason");
  assert.match(await row(env.THROTTLED_ID).locator('.badge[data-state="throttled"]').textContent(), /^throttled until \d/);
  assert.match(await row(env.THROTTLED_ID).locator("[data-detail]").textContent(), /Retry-After/);
  assert.equal(await row(env.IDLE_ID).locator(".badge[data-state]").textContent(), "healthy");

  step("the last import in words, the next run, and the idle refresh token's warning");
  assert.match(await row(env.HEALTHY_ID).locator("[data-last-run]").textContent(), /^2 imported, 0 to Error, (now|\d+ seconds? ago|\d+ minutes? ago)/);
  const jobs = await (await page.request.get(`${BASE_URL}/api/v2/jobs`)).json();
  const importJob = jobs.find((j) => j.script === "import-emails");
  assert.equal(await row(env.HEALTHY_ID).locator("td").nth(3).locator("time").getAttribute("datetime"), importJob.next_run_at,
    "the next run is the default import job's next slot");
  assert.match(await row(env.IDLE_ID).locator("[data-warning]").textContent(), /not been used for 85 days/);
  assert.match(await row(env.IDLE_ID).textContent(), /refresh token expires in 4 days/, "85 of 90 days gone (4 days and some hours left)");

  step("colours match severity: a revoked grant is red, a throttle or a warning amber");
  const warn = "rgb(161, 92, 7)", bad = "rgb(180, 35, 24)";
  const colour = (locator) => locator.evaluate((e) => getComputedStyle(e).color);
  assert.equal(await colour(row(env.REVOKED_ID).locator(".badge[data-state]")), bad);
  assert.equal(await colour(row(env.THROTTLED_ID).locator(".badge[data-state]")), warn);
  assert.equal(await colour(row(env.IDLE_ID).locator("[data-warning]")), warn);

  step("the access token's countdown ticks without a reload");
  const access = row(env.IDLE_ID).locator('[data-what="access token"]');
  const first = await access.textContent();
  assert.match(first, /^access token expires in (29|30):\d\d$/);
  await page.waitForFunction((t) => document.querySelector('[data-what="access token"]').textContent !== t, first, { timeout: 3000 });
  await shot("overview");
  await axeCheck("overview");

  step("the overview refreshes itself: an importer deleted elsewhere goes without a reload");
  const session = await (await page.request.get(`${BASE_URL}/ui/session`)).json();
  const gone = await page.request.delete(`${BASE_URL}/api/v2/importers/email/${env.IDLE_ID}`,
    { headers: { "X-CSRF-Token": session.csrf_token } });
  assert.equal(gone.status(), 204, await gone.text());
  await row(env.IDLE_ID).waitFor({ state: "detached", timeout: 15000 });
  assert.equal(await page.locator("#overview tbody tr").count(), 3);

  step("the phone layout shows the overview's rows as cards");
  await page.setViewportSize({ width: 390, height: 844 });
  const cell = row(env.REVOKED_ID).locator("td").nth(1);
  assert.equal(await cell.getAttribute("data-label"), "State");
  assert.equal(await cell.evaluate((td) => getComputedStyle(td).display), "block");
  assert.equal(await page.locator("#overview thead").evaluate((e) => getComputedStyle(e).display), "none");
  assert.equal(await cell.evaluate((td) => getComputedStyle(td, "::before").content), '"State"');
  await shot("phone-overview");
  await axeCheck("overview (phone)");
  await page.setViewportSize({ width: 1200, height: 900 });

  step("the importer list shows the same words");
  await page.click("nav >> text=E-mail importers");
  await page.waitForSelector("h1:has-text('E-mail importers')");
  assert.equal(await page.locator(`tr[data-importer="${env.REVOKED_ID}"] .badge[data-state]`).textContent(), "re-authentication required");
  await axeCheck("importers");

  step("the importer page: health, recent runs, and the dry run's predicted fates");
  await page.goto(`${BASE_URL}/ui/#/importers/${env.HEALTHY_ID}`);
  await page.waitForSelector("#status .badge[data-state='healthy']");
  assert.match(await page.textContent("#last-import"), /2 imported, 0 to Error/);
  await page.waitForSelector("#runs tr[data-run]");
  assert.match(await page.textContent("#runs"), /imported 2/);
  await page.click("#dry-run-button");
  await page.waitForSelector("#dry-run-result table");
  const fate = (subject) => page.locator("#dry-run-result tr", { has: page.locator("[data-subject]", { hasText: subject }) });
  assert.equal(await fate("Invoice 4712").getAttribute("data-prediction"), "import");
  assert.match(await fate("Invoice 4712").textContent(), /would be imported/);
  assert.match(await fate("Invoice 4712").textContent(), /invoice-4712\.pdf/);
  assert.equal(await fate("Fabrikam newsletter").getAttribute("data-prediction"), "error");
  assert.match(await fate("Fabrikam newsletter").textContent(), /subject blocked/);
  await shot("importer");
  await axeCheck("importer");

  step("a throttled importer's page says until when, and a revoked one why");
  await page.goto(`${BASE_URL}/ui/#/importers/${env.THROTTLED_ID}`);
  await page.waitForSelector("#status .badge[data-state='throttled']");
  assert.match(await page.textContent("#state-detail"), /Retry-After/);
  await page.goto(`${BASE_URL}/ui/#/importers/${env.REVOKED_ID}`);
  await page.waitForSelector("#auth-state[data-state='reauth_required']");
  assert.equal(await page.textContent("#auth-state"), "re-authentication required");
  assert.equal(await page.getAttribute("#state-detail", "class"), "notice bad");

  step("documents: search by subject, sender, dates and importer");
  const subjectsShown = () => page.locator("tr[data-document] [data-subject]").allTextContents();
  // Fills the whole form, submits, and waits for the page the search made
  // (the old form is marked, so a stale list is never read as the answer).
  const search = async (fields) => {
    const all = { subject: "", sender: "", since: "", until: "", importer: "", ...fields };
    await page.fill("#search-subject", all.subject);
    await page.fill("#search-sender", all.sender);
    await page.fill("#search-since", all.since);
    await page.fill("#search-until", all.until);
    await page.selectOption("#search-importer", all.importer);
    await page.evaluate(() => document.getElementById("document-search").setAttribute("data-stale", ""));
    await page.click("#document-search button[type=submit]");
    await page.waitForSelector("#document-search:not([data-stale])");
    await page.waitForSelector("#document-count, #no-documents, #search-error");
  };
  await page.click("nav >> text=Documents");
  await page.waitForSelector("#documents");
  assert.equal(await page.locator("tr[data-document]").count(), 2);
  await search({ subject: "4711" });
  assert.deepEqual(await subjectsShown(), ["Invoice 4711"]);
  await search({ sender: "SCANNER" });
  assert.deepEqual(await subjectsShown(), ["Scanned delivery note"]);
  await search({ since: "2026-03-05" });
  assert.deepEqual(await subjectsShown(), ["Scanned delivery note"]);
  await search({ until: "2026-03-05", importer: env.HEALTHY_ID });
  assert.deepEqual(await subjectsShown(), ["Invoice 4711"]);
  assert.match(page.url(), /until=2026-03-05/);
  await search({ importer: env.THROTTLED_ID });
  await page.waitForSelector("#no-documents");

  step("a bad date is refused by the API, naming the field");
  await page.goto(`${BASE_URL}/ui/#/documents?since=yesterday`);
  await page.waitForSelector("#search-error");
  assert.match(await page.textContent("#search-error"), /since/);
  assert.match(await page.textContent('[data-error="since"]'), /neither a date/);

  step("a document's details: metadata, previews, the mail link, and a download equal to the original");
  await page.goto(`${BASE_URL}/ui/#/documents`);
  await page.waitForSelector("#documents");
  await axeCheck("documents");
  for (const id of await page.locator("tr[data-document]").evaluateAll((rows) => rows.map((r) => r.dataset.document))) {
    await page.click(`tr[data-document="${id}"] [data-details]`);
  }
  const img = page.locator('img.preview[data-preview="attachments/scan.png"]');
  await img.waitFor();
  await page.waitForFunction(() => { const i = document.querySelector('img.preview[data-preview="attachments/scan.png"]'); return i && i.complete && i.naturalWidth === 4; });
  const iframe = page.locator('iframe.preview[data-preview="attachments/invoice-4711.pdf"]');
  assert.match(await iframe.getAttribute("src"), /\/files\/attachments\/invoice-4711\.pdf\?inline=true$/);
  const inline = await page.request.get(`${BASE_URL}${await iframe.getAttribute("src")}`);
  assert.match(inline.headers()["content-disposition"], /^inline/);
  assert.equal(inline.headers()["x-frame-options"], "SAMEORIGIN", "the preview may be framed by the UI");
  assert.match(inline.headers()["content-security-policy"], /frame-ancestors 'self'/);
  let frame;
  for (let i = 0; i < 50 && !frame; i++) {
    frame = page.frames().find((f) => f.url().includes("invoice-4711.pdf"));
    if (!frame) await page.waitForTimeout(100);
  }
  assert.ok(frame, `the PDF's frame loaded, not refused by the frame policy: ${page.frames().map((f) => f.url()).join(", ")}`);
  assert.match(await page.locator('tr[data-details-for] table.meta').first().textContent(), /Message-ID/);
  await shot("documents");
  await axeCheck("documents (details)");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator('tr[data-details-for] a[download][data-file="attachments/invoice-4711.pdf"]').click(),
  ]);
  assert.equal(download.suggestedFilename(), "invoice-4711.pdf");
  const got = await readFile(await download.path());
  const want = await readFile(env.ORIGINAL_PDF);
  assert.ok(got.equals(want), `the download has the original bytes (${got.length} vs ${want.length})`);
  const docId = await page.locator("tr[data-document]", { has: page.locator("[data-subject]", { hasText: "Invoice 4711" }) }).getAttribute("data-document");
  const mailHref = await page.locator(`tr[data-document="${docId}"] a[data-mail-link]`).getAttribute("href");
  assert.equal(mailHref, `#/importers/${env.HEALTHY_ID}/mails?document_id=${docId}`);
  await page.goto(`${BASE_URL}/ui/${mailHref}`);
  await page.waitForSelector("#mail-focus table");
  assert.match(await page.textContent("#mail-focus"), /invoice-4711@fabrikam\.example/);

  step("scripts: purge-documents from its parameter form");
  await page.click("nav >> text=Scripts");
  await page.waitForSelector('form[data-script="purge-documents"]');
  await axeCheck("scripts");
  const purge = page.locator('form[data-script="purge-documents"]');
  await purge.locator('[data-param="retention_days"]').fill("3650");
  await purge.locator("button:has-text('Run now')").click();
  await page.waitForSelector("#exec-status:not([data-status='running'])", { timeout: 30000 });
  assert.equal(await page.textContent("#exec-status"), "succeeded", await page.textContent("pre.log"));
  assert.match(await page.textContent(".card"), /retention_days: 3650/);

  step("scripts: import-emails as a dry run of one importer, named in the log");
  await page.click("nav >> text=Scripts");
  const imp = page.locator('form[data-script="import-emails"]');
  await imp.locator('[data-param="importer_id"]').selectOption(env.HEALTHY_ID);
  await imp.locator('[data-param="dry_run"]').check();
  await imp.locator("button:has-text('Run now')").click();
  await page.waitForSelector("#exec-status:not([data-status='running'])", { timeout: 30000 });
  assert.equal(await page.textContent("#exec-status"), "succeeded", await page.textContent("pre.log"));
  assert.match(await page.textContent(".card"), /importer_id: Invoices/, "the parameter names the importer");
  const logLink = page.locator(`pre.log a[href="#/importers/${env.HEALTHY_ID}"]`).first();
  assert.equal(await logLink.textContent(), "Invoices", "the log names the importer, not its id");
  assert.equal((await page.textContent("pre.log")).includes(env.HEALTHY_ID), false);

  step("jobs: add one with parameters, see it, delete it");
  await page.click("nav >> text=Jobs");
  await page.waitForSelector("#new-job");
  await axeCheck("jobs");
  const before = await page.locator("tr[data-job]").count();
  await page.selectOption("#new-job-script", "purge-documents");
  await page.fill("#new-job-cron", "0 3 * * 1");
  await page.fill("#new-job-tz", "Europe/Berlin");
  await page.fill('#new-job [data-param="retention_days"]', "0");
  await page.click("#new-job button[type=submit]");
  await page.waitForSelector("#new-job-result .notice.bad");
  assert.match(await page.textContent('#new-job [data-error="retention_days"]'), /\S/, await page.textContent("#new-job-result"));
  await page.fill('#new-job [data-param="retention_days"]', "400");
  await page.click("#new-job button[type=submit]");
  await page.waitForFunction((n) => document.querySelectorAll("tr[data-job]").length === n + 1, before);
  const added = page.locator("tr[data-job]", { has: page.locator('[data-k="cron"][value="0 3 * * 1"]') });
  assert.match(await added.textContent(), /retention_days: 400/);
  await added.locator("[data-desc]:has-text('(Europe/Berlin)')").waitFor();
  await shot("jobs");
  page.once("dialog", (d) => d.accept());
  await added.locator("[data-delete]").click();
  await page.waitForFunction((n) => document.querySelectorAll("tr[data-job]").length === n, before);

  step("executions: coloured status, duration, summary, filters by status, script and job");
  await page.click("nav >> text=Executions");
  await page.waitForSelector("#executions");
  await axeCheck("executions");
  assert.ok(await page.locator('#executions .badge.bad[data-status="failed"]').count() >= 1, "Bob's failed run is red");
  assert.ok(await page.locator('#executions .badge.ok[data-status="succeeded"]').count() >= 1);
  await page.selectOption("#filter-status", "failed");
  await page.waitForURL(/status=failed/);
  // Only failed runs remain once the filtered list has replaced the full one.
  await page.waitForFunction(() => { const rows = [...document.querySelectorAll("#executions tr[data-execution]")]; return rows.length > 0 && rows.every((r) => r.dataset.status === "failed"); });
  assert.match(await page.textContent("#executions"), /Bob's receipts/, "the summary names the importer");
  await page.selectOption("#filter-status", "");
  await page.selectOption("#filter-script", "purge-documents");
  await page.waitForFunction(() => { const rows = [...document.querySelectorAll("#executions tr[data-execution] a")]; return rows.length > 0 && rows.every((a) => a.textContent === "purge-documents"); });
  assert.equal(await page.locator("#executions tr[data-execution]").count(), 1);
  await page.selectOption("#filter-script", "");
  await page.waitForFunction(() => document.querySelector("#filter-script")?.value === "");
  const someJob = await page.locator("#filter-job option").nth(1).getAttribute("value");
  await page.selectOption("#filter-job", someJob);
  await page.waitForSelector("#no-executions");
  assert.match(page.url(), new RegExp(`job_id=${someJob}`));
  assert.equal(await page.locator("#executions tr[data-execution]").count(), 0, "no job has run: every run so far was manual");

  step("alerts and audit pass axe too");
  await page.click("nav >> text=Alerts");
  await page.waitForSelector("h1:has-text('Alerts')");
  await axeCheck("alerts");
  await page.click("nav >> text=Audit log");
  await page.waitForSelector("h1:has-text('Audit log')");
  await axeCheck("audit");

  assert.deepEqual(axeFindings, [], "axe-core found serious or critical violations");
  console.log("daily: all steps passed");
} catch (err) {
  await shot("failure").catch(() => {});
  console.error(`daily: FAILED: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
