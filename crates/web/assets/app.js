// mailferry admin UI: a thin page over the REST API (/api/v2). Every action
// is an API call with the session cookie and the CSRF token; nothing here
// knows more than the API tells it.

const view = document.getElementById("view");
let session = null;

// Each navigation's number: a read that answers after the admin moved on
// is dropped, so a slow page never paints over the one shown now.
let navigation = 0;
class Superseded extends Error {}
window.addEventListener("unhandledrejection", (e) => { if (e.reason instanceof Superseded) e.preventDefault(); });

async function api(method, path, body) {
  const startedIn = navigation;
  const headers = { "Accept": "application/json" };
  if (session) headers["X-CSRF-Token"] = session.csrf_token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { location.href = "/ui/login"; throw new Error("signed out"); }
  const text = await res.text();
  if (method === "GET" && startedIn !== navigation) throw new Superseded(`${path}: the page changed meanwhile`);
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  return { ok: res.ok, status: res.status, data };
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// A time in words ("4 minutes ago", "in 23 minutes") and in the browser's
// zone; the UTC instant on hover.
function when(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return esc(ts);
  return `<time datetime="${esc(ts)}" title="${esc(d.toISOString())} (UTC)">${esc(ago(d))} <span class="muted small">${esc(d.toLocaleString())}</span></time>`;
}

function ago(d) {
  const seconds = Math.round((d.getTime() - Date.now()) / 1000);
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const [unit, size] = units.find(([, size]) => Math.abs(seconds) >= size) || ["second", 1];
  return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(Math.round(seconds / size), unit);
}

function problemText(p) {
  if (!p) return "The server did not answer.";
  const fields = (p.errors || []).map((e) => `${e.field}: ${e.message}`);
  return [p.detail || p.title || JSON.stringify(p), ...fields].join(" — ");
}

function unavailable(res, what) {
  if (res.status === 404 || res.status === 405) return `<p class="muted">${esc(what)} is not available in this build.</p>`;
  return `<div class="notice bad">${esc(problemText(res.data))}</div>`;
}

// ---------- health: one name per state, on every page ----------

// The overview API's states (worst first), their badge colour and words.
const STATES = {
  reauth_required: ["bad", "re-authentication required"],
  mailbox_denied: ["bad", "mailbox denied"],
  folder_problem: ["bad", "folder problem"],
  failing: ["bad", "failing"],
  unauthenticated: ["warn", "authentication required"],
  throttled: ["warn", "throttled"],
  importing: ["info", "importing"],
  healthy: ["ok", "healthy"],
};
// The importer status's authorization states, in the same words.
const AUTH_STATES = {
  authorized: ["ok", "authorized"],
  reauth_required: STATES.reauth_required,
  mailbox_denied: STATES.mailbox_denied,
  unauthenticated: STATES.unauthenticated,
  not_applicable: ["neutral", "no user signs in"],
};

function stateBadge(e) {
  const [cls, words] = STATES[e.state] || ["neutral", e.state];
  let label = words;
  if (e.state === "failing") label = `failing for ${e.failing_runs} run${e.failing_runs === 1 ? "" : "s"}`;
  if (e.state === "throttled" && e.throttled_until) label = `throttled until ${new Date(e.throttled_until).toLocaleTimeString()}`;
  return `<span class="badge ${cls}" data-state="${esc(e.state)}">${esc(label)}</span>`;
}

// "12 imported, 1 to Error, 4 minutes ago" (or why it failed).
function lastRunWords(run) {
  if (!run) return `<span class="muted">no import yet</span>`;
  const at = when(run.finished_at);
  if (run.status === "failed") return `<span class="error">failed</span> ${at}`;
  const parts = [`${run.imported} imported`, `${run.to_error} to Error`];
  if (run.left_for_retry) parts.push(`${run.left_for_retry} left for the next run`);
  return `${esc(parts.join(", "))}, ${at}`;
}

// A countdown to `ts`, kept ticking by tickCountdowns().
function countdown(ts, what) {
  if (!ts) return `<span class="muted">–</span>`;
  return `<span data-countdown="${esc(ts)}" data-what="${esc(what)}" title="${esc(new Date(ts).toISOString())} (UTC)">${esc(remaining(ts, what))}</span>`;
}

function remaining(ts, what) {
  const s = Math.round((new Date(ts).getTime() - Date.now()) / 1000);
  if (s <= 0) return `${what} expired ${ago(new Date(ts))}`;
  const pad = (n) => String(n).padStart(2, "0");
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60];
  const left = d >= 2 ? `${d} days` : d === 1 || h > 0 ? `${d * 24 + h} h ${pad(m)} min` : `${pad(m)}:${pad(sec)}`;
  return `${what} expires in ${left}`;
}

function tickCountdowns() {
  document.querySelectorAll("[data-countdown]").forEach((el) => { el.textContent = remaining(el.dataset.countdown, el.dataset.what); });
}
setInterval(tickCountdowns, 1000);

// What refreshes the page shown now; a new page cancels the last one's.
let refresher = null;
function refreshEvery(ms, fn, stillShown) {
  clearInterval(refresher);
  refresher = setInterval(() => { if (stillShown()) fn(); else clearInterval(refresher); }, ms);
}

function tokenCells(e) {
  if (!e.delegated) return `<span class="muted">no user signs in</span>`;
  if (!e.access_token_expires_at && !e.refresh_token_expires_at) return `<span class="muted">no tokens</span>`;
  return `<div>${countdown(e.access_token_expires_at, "access token")}</div>
    <div class="small">${countdown(e.refresh_token_expires_at, "refresh token")}</div>`;
}

function warningList(e) {
  return (e.warnings || []).map((w) => `<div class="small warning-line" data-warning>⚠ ${esc(w)}</div>`).join("");
}

async function overviewPage() {
  const shown = location.hash;
  const draw = async () => {
    const res = await api("GET", "/api/v2/overview");
    if (location.hash !== shown) return;
    if (!res.ok) { view.innerHTML = `<div class="card"><h1>Overview</h1>${unavailable(res, "The overview")}</div>`; return; }
    const problems = res.data.filter((e) => !["healthy", "importing", "throttled"].includes(e.state)).length;
    const rows = res.data.map((e) => `<tr data-importer="${esc(e.importer_id)}" data-state="${esc(e.state)}">
        <td><a href="#/importers/${esc(e.importer_id)}">${esc(e.name)}</a><div class="small muted">${esc(PROTOCOLS[e.protocol] || e.protocol)}${e.account ? ` · ${esc(e.account)}` : ""}</div></td>
        <td>${stateBadge(e)}${e.state_detail ? `<div class="small" data-detail>${esc(e.state_detail)}</div>` : ""}${warningList(e)}</td>
        <td data-last-run>${lastRunWords(e.last_run)}</td>
        <td>${e.next_run_at ? when(e.next_run_at) : `<span class="muted">no import job</span>`}</td>
        <td>${tokenCells(e)}</td></tr>`).join("");
    view.innerHTML = `<div class="card"><h1>Overview</h1>
      <p class="muted" id="overview-summary">${res.data.length} importer(s), ${problems ? `<strong class="error">${problems} need(s) attention</strong>` : "none needs attention"}. Refreshed every 10 seconds.</p>
      ${res.data.length ? `<table id="overview"><thead><tr><th>Importer</th><th>State</th><th>Last import</th><th>Next run</th><th>Tokens</th></tr></thead><tbody>${rows}</tbody></table>`
        : `<p class="muted">No importer yet. <a href="#/importers/new">Create one</a>.</p>`}</div>`;
  };
  await draw();
  refreshEvery(10000, draw, () => location.hash === shown);
}

// ---------- importers ----------

const PROTOCOLS = {
  graph_delegated: "Microsoft Graph API Delegated",
  graph_client_credentials: "Microsoft Graph API Client Credentials",
  imap: "IMAP",
};

async function importersPage() {
  const [res, health] = await Promise.all([api("GET", "/api/v2/importers/email"), api("GET", "/api/v2/overview")]);
  if (!res.ok) { view.innerHTML = unavailable(res, "The importer list"); return; }
  const byId = new Map((health.ok ? health.data : []).map((e) => [e.importer_id, e]));
  const rows = res.data.map((i) => `<tr data-importer="${esc(i.id)}">
      <td><a href="#/importers/${esc(i.id)}">${esc(i.name)}</a></td>
      <td>${esc(PROTOCOLS[i.protocol] || i.protocol)}</td>
      <td>${esc(i.mailbox || i.username || "(authorizing user)")}</td>
      <td>${byId.has(i.id) ? stateBadge(byId.get(i.id)) : ""} ${i.warnings.length ? `<span class="badge warn" title="${esc(i.warnings.join("\n"))}">${i.warnings.length} warning(s)</span>` : ""}</td>
    </tr>`).join("");
  view.innerHTML = `<div class="card"><h1>E-mail importers</h1>
    ${res.data.length ? `<table><thead><tr><th>Name</th><th>Protocol</th><th>Mailbox</th><th>Status</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="muted">No importer yet.</p>`}
    <div class="actions"><a class="button" href="#/importers/new">New importer</a></div></div>`;
}

function input(field, label, value, opts = {}) {
  const type = opts.type || "text";
  const hint = opts.hint ? `<span class="hint">${opts.hint}</span>` : "";
  return `<label data-wrap="${field}">${esc(label)} ${hint}
    <input type="${type}" data-field="${field}" value="${esc(value ?? "")}" ${opts.placeholder ? `placeholder="${esc(opts.placeholder)}"` : ""} ${opts.extra || ""}>
    <span class="field-error" data-error="${field}"></span></label>`;
}

// The form's `sink`; write-only secrets are sent only when typed.
function sinkBody(val) {
  const optional = (field) => (val(field) ? { [field.slice(5)]: val(field) } : {});
  switch (val("sink.kind")) {
    case "webhook":
      return { kind: "webhook", url: val("sink.url"), timeout_secs: Number(val("sink.timeout_secs") || 30), attempts: Number(val("sink.attempts") || 3), ...optional("sink.token") };
    case "s3":
      return { kind: "s3", bucket: val("sink.bucket"), region: val("sink.region"), access_key_id: val("sink.access_key_id"), ...optional("sink.endpoint"), ...optional("sink.prefix"), ...optional("sink.secret_access_key") };
    default:
      return { kind: "spool" };
  }
}

function folderInput(key, value, canPick) {
  const pick = canPick ? `<button type="button" class="secondary" data-pick="${key}">Choose…</button>` : "";
  return `<label data-wrap="folders.${key}">${key[0].toUpperCase() + key.slice(1)} folder
      <span class="hint">a name (<code>Exported</code>) or a path (<code>Inbox/Invoices</code>)</span>
      <span style="display:flex;gap:8px"><input type="text" data-field="folders.${key}" value="${esc(value ?? "")}">${pick}</span>
      <span class="field-error" data-error="folders.${key}"></span></label>`;
}

// Whether the app signs in with a secret or a certificate (a form choice, not an API field).
const CREDENTIALS = [["secret", "Client secret"], ["certificate", "Certificate"]];
const ON_BAD_SIGNATURE = [["error", "Move to Error (smime_invalid_signature)"], ["import", "Import and record the failed verdict"]];
const KEPT = "stored — leave empty to keep";

function textarea(field, label, value, opts = {}) {
  const hint = opts.hint ? `<span class="hint">${opts.hint}</span>` : "";
  return `<label data-wrap="${field}">${esc(label)} ${hint}
    <textarea data-field="${field}" rows="${opts.rows || 3}" ${opts.placeholder ? `placeholder="${esc(opts.placeholder)}"` : ""} ${opts.extra || ""}>${esc(value ?? "")}</textarea>
    <span class="field-error" data-error="${field}"></span></label>`;
}

// One sender pattern + password of the ZIP list; `stored`: a password is kept for this sender.
function zipRow(row = {}) {
  return `<div class="grid3" data-zip-row ${row.password_set ? `data-stored-sender="${esc(row.sender)}"` : ""}>
    <label>Sender pattern <span class="hint">e.g. *@supplier.example</span>
      <input type="text" data-zip="sender" value="${esc(row.sender ?? "")}" placeholder="*@supplier.example">
      <span class="field-error" data-zip-error="sender"></span></label>
    <label>ZIP password <span class="hint">write-only</span>
      <input type="password" data-zip="password" value="" ${row.password_set ? `placeholder="${esc(KEPT)}"` : ""} autocomplete="new-password">
      <span class="field-error" data-zip-error="password"></span></label>
    <span class="actions" style="align-items:flex-end;margin:0 0 10px"><button type="button" class="secondary" data-zip-remove>Remove</button></span>
  </div>`;
}

function importerForm(imp) {
  const isNew = !imp.id;
  const p = imp.protocol || "graph_delegated";
  const f = imp.folders || { inbox: "Inbox", exported: "Exported", error: "Error" };
  const att = { allowed_types: [], allowed_extensions: [], include_inline: false, min_size: 0, exclude_names: [], include_names: [], ...imp.attachments };
  const rules = imp.rules || { sender_allow: [], subject_block: [] };
  const sink = imp.sink || { kind: "spool" };
  const smime = { trusted_ca_pem: null, platform_roots: true, on_bad_signature: "error", key_set: false, ...imp.smime };
  const credential = imp.client_certificate ? "certificate" : "secret";
  return `<form id="importer-form" class="card" autocomplete="off">
    <h1>${isNew ? "New e-mail importer" : esc(imp.name)}</h1>
    <div id="form-notice"></div>
    ${input("name", "Name", imp.name, { placeholder: "Invoices" })}
    <label>Protocol <select data-field="protocol">${Object.entries(PROTOCOLS).map(([k, v]) => `<option value="${k}" ${k === p ? "selected" : ""}>${v}</option>`).join("")}</select>
      <span class="field-error" data-error="protocol"></span></label>
    <div data-section="graph">
      <div class="grid2">
        ${input("client_id", "Client ID", imp.client_id, { hint: "Application (client) ID from Azure" })}
        ${input("tenant_id", "Tenant ID", imp.tenant_id, { hint: "Directory (tenant) ID or domain" })}
        <label>Credential <select data-field="credential">${CREDENTIALS.map(([k, v]) => `<option value="${k}" ${k === credential ? "selected" : ""}>${v}</option>`).join("")}</select>
          <span class="hint">what the app signs in with, as uploaded to its registration (Certificates &amp; secrets)</span></label>
        ${input("client_secret", "Client secret", "", { type: "password", hint: imp.client_secret_set ? "stored — leave empty to keep it" : "the secret's value, not its ID", extra: 'autocomplete="new-password"' })}
        ${input("client_secret_expires_at", "Client secret expires", imp.client_secret_expires_at ? imp.client_secret_expires_at.slice(0, 10) : "", { type: "date", hint: "to be warned 30 days before" })}
        ${input("mailbox", "Mailbox", imp.mailbox, { hint: "empty: the authorizing user's own mailbox; a shared mailbox needs Mail.ReadWrite.Shared" })}
        <label>Cloud <select data-field="cloud">${["global", "usgov", "usgov-dod", "china"].map((c) => `<option ${c === (imp.cloud || "global") ? "selected" : ""}>${c}</option>`).join("")}</select></label>
      </div>
      <div class="grid2" data-section="certificate">
        ${textarea("client_certificate_pem", "Certificate (PEM)", imp.client_certificate?.pem, { hint: "public: the certificate uploaded to the app registration", placeholder: "-----BEGIN CERTIFICATE-----" })}
        ${textarea("client_private_key_pem", "Private key (PEM)", "", { hint: "write-only: never shown again once saved", placeholder: imp.client_private_key_set ? KEPT : "-----BEGIN PRIVATE KEY-----", extra: 'autocomplete="off" spellcheck="false"' })}
      </div>
      <details><summary class="muted">Endpoints (emulator or proxy)</summary><div class="grid2">
        ${input("endpoints.authority", "Authority", imp.endpoints?.authority, { placeholder: "https://login.microsoftonline.com" })}
        ${input("endpoints.graph", "Graph", imp.endpoints?.graph, { placeholder: "https://graph.microsoft.com" })}
      </div></details>
      ${imp.redirect_uri ? `<p class="small">Redirect URI to register in Azure (Authentication tab): <code id="redirect-uri">${esc(imp.redirect_uri)}</code></p>` : ""}
    </div>
    <div data-section="imap"><div class="grid3">
      ${input("host", "Host", imp.host, { placeholder: "imap.example.com" })}
      ${input("port", "Port", imp.port, { type: "number", placeholder: "993" })}
      <label>Security <select data-field="security">${["tls", "starttls", "none"].map((s) => `<option ${s === (imp.security || "tls") ? "selected" : ""}>${s}</option>`).join("")}</select></label>
      ${input("username", "Username", imp.username)}
      <label>Login <select data-field="auth">${[["password", "password"], ["xoauth2", "XOAUTH2 (Microsoft 365: sign in with the app above)"]].map(([k, v]) => `<option value="${k}" ${k === (imp.auth || "password") ? "selected" : ""}>${v}</option>`).join("")}</select>
        <span class="field-error" data-error="auth"></span></label>
      ${input("password", "Password", "", { type: "password", hint: imp.password_set ? "stored — leave empty to keep it" : "", extra: 'autocomplete="new-password"' })}
    </div>
    <label data-wrap="tls_ca_pem">Trusted certificate (PEM) <span class="hint">only for a private CA or a self-signed server certificate; empty trusts the system's CAs</span>
      <textarea data-field="tls_ca_pem" rows="3" placeholder="-----BEGIN CERTIFICATE-----">${esc(imp.tls_ca_pem || "")}</textarea>
      <span class="field-error" data-error="tls_ca_pem"></span></label></div>
    <h3>Folders</h3>
    <div class="grid3">${folderInput("inbox", f.inbox, !isNew)}${folderInput("exported", f.exported, !isNew)}${folderInput("error", f.error, !isNew)}</div>
    <div id="folder-picker"></div>
    <h3>Attachments</h3>
    <div class="grid2">
      ${input("attachments.allowed_types", "Allowed types", att.allowed_types.join(", "), { hint: "comma-separated, e.g. application/pdf, image/*; empty allows all" })}
      ${input("attachments.allowed_extensions", "Allowed extensions", att.allowed_extensions.join(", "), { hint: "comma-separated, e.g. pdf, xml; empty allows all" })}
      ${input("attachments.min_size", "Minimum size (bytes)", att.min_size, { type: "number", hint: "skips logos and signatures" })}
      ${input("attachments.exclude_names", "Skip file names", att.exclude_names.join(", "), { hint: "comma-separated, * as a wildcard, e.g. *agb*.pdf, logo*.png" })}
      ${input("attachments.include_names", "Only file names", att.include_names.join(", "), { hint: "comma-separated; empty imports every name the rules above allow" })}
      <label>Mail body <select data-field="import_body">${[["never", "never: attachments only"], ["when_no_attachment", "when no attachment passes the rules"], ["always", "always, beside the attachments"]].map(([k, v]) => `<option value="${k}" ${k === (imp.import_body || "never") ? "selected" : ""}>${v}</option>`).join("")}</select>
        <span class="hint">stored as body.txt and body.html in the document</span><span class="field-error" data-error="import_body"></span></label>
      <label class="inline"><input type="checkbox" data-field="attachments.include_inline" ${att.include_inline ? "checked" : ""}> Import inline images</label>
    </div>
    <h3>ZIP attachments</h3>
    <p class="muted small">Files are taken out of ZIP attachments; an encrypted ZIP opens with the password of the first sender pattern that matches.</p>
    <div id="zip-rows">${(imp.zip_passwords || []).map(zipRow).join("")}</div>
    <span class="field-error" data-error="zip_passwords"></span>
    <div class="actions"><button type="button" class="secondary" id="zip-add">Add sender password</button></div>
    <label class="inline"><input type="checkbox" data-field="zip_keep_archive" ${(imp.zip_keep_archive ?? true) ? "checked" : ""}> Keep the ZIP itself beside its files</label>
    <h3>S/MIME</h3>
    <div class="grid2">
      ${textarea("smime.trusted_ca_pem", "Trusted CA certificates (PEM)", smime.trusted_ca_pem, { hint: "signers may chain to these; empty: only the system's root CAs, if trusted below", placeholder: "-----BEGIN CERTIFICATE-----" })}
      <div>
        <label class="inline"><input type="checkbox" data-field="smime.platform_roots" ${smime.platform_roots ? "checked" : ""}> Also trust the system's root CAs</label>
        <label>Bad signature <select data-field="smime.on_bad_signature">${ON_BAD_SIGNATURE.map(([k, v]) => `<option value="${k}" ${k === smime.on_bad_signature ? "selected" : ""}>${v}</option>`).join("")}</select>
          <span class="field-error" data-error="smime.on_bad_signature"></span></label>
      </div>
      ${input("smime.key_pkcs12_base64", "Decryption key (PKCS#12, .p12/.pfx)", "", { type: "file", hint: smime.key_set ? "choose a file only to replace the stored key" : "only needed for encrypted mails", extra: 'accept=".p12,.pfx,application/x-pkcs12"' })}
      ${input("smime.pkcs12_password", "PKCS#12 password", "", { type: "password", hint: "the password the file was exported with; write-only", extra: 'autocomplete="new-password"' })}
    </div>
    ${smime.key_set ? `<p class="small" id="smime-key-stored">A key is stored.</p>
    <label class="inline"><input type="checkbox" data-field="smime.remove_key"> Remove key</label>` : ""}
    <h3>Rules</h3>
    <div class="grid2">
      ${input("rules.sender_allow", "Allowed senders", rules.sender_allow.join(", "), { hint: "comma-separated, * wildcards, e.g. *@contoso.com; empty allows every sender; checked first" })}
      ${input("rules.subject_block", "Blocked subjects", rules.subject_block.join(", "), { hint: "comma-separated, * wildcards, e.g. *newsletter*; a match goes to Error" })}
    </div>
    <h3>Documents go to</h3>
    <div class="grid3">
      <label>Sink <select data-field="sink.kind">${["spool", "webhook", "s3"].map((k) => `<option ${k === sink.kind ? "selected" : ""}>${k}</option>`).join("")}</select>
        <span class="field-error" data-error="sink.kind"></span></label>
      <div data-section="webhook">
        ${input("sink.url", "Webhook URL", sink.url, { placeholder: "https://dms.example.com/inbox" })}
      </div>
      <div data-section="webhook" class="grid2">
        ${input("sink.timeout_secs", "Time-out (s)", sink.timeout_secs ?? 30, { type: "number" })}
        ${input("sink.attempts", "Attempts", sink.attempts ?? 3, { type: "number" })}
      </div>
      <div data-section="webhook">
        ${input("sink.token", "Bearer token", "", { type: "password", hint: sink.token_set ? "stored — leave empty to keep it" : "optional; sent as Authorization: Bearer", extra: 'autocomplete="new-password"' })}
      </div>
    </div>
    <div class="grid3" data-section="s3">
      ${input("sink.bucket", "Bucket", sink.bucket, { placeholder: "invoices" })}
      ${input("sink.region", "Region", sink.region, { placeholder: "eu-central-1" })}
      ${input("sink.endpoint", "Endpoint", sink.endpoint, { placeholder: "https://s3.example.com:9000", hint: "S3-compatible servers only; empty for AWS" })}
      ${input("sink.prefix", "Key prefix", sink.prefix, { placeholder: "mailferry/" })}
      ${input("sink.access_key_id", "Access key ID", sink.access_key_id)}
      ${input("sink.secret_access_key", "Secret access key", "", { type: "password", hint: sink.secret_access_key_set ? "stored — leave empty to keep it" : "write-only", extra: 'autocomplete="new-password"' })}
    </div>
    <div class="actions">
      <button type="submit">Save</button>
      ${isNew ? "" : `<a class="button secondary" id="authenticate" href="/api/v2/importers/email/${esc(imp.id)}/authenticate" ${p === "graph_delegated" || imp.auth === "xoauth2" ? "" : "hidden"}>Authenticate</a>
        <button type="button" class="secondary" id="test">Mail connection test</button>
        <button type="button" class="danger" id="delete">Delete</button>`}
      <a class="button secondary" href="#/importers">Back</a>
    </div>
  </form>
  <div id="test-result"></div>
  ${isNew ? "" : `<div class="card" id="status"><h2>Health</h2><p class="muted">Loading…</p></div>
  <div class="card" id="runs"><h2>Recent runs</h2><p class="muted">Loading…</p></div>
  <div class="card" id="dry-run"><h2>What would the next run do?</h2>
    <p class="muted small">A dry run reads the Inbox and tells each mail's fate; it moves, stores and records nothing.</p>
    <div class="actions"><button type="button" class="secondary" id="dry-run-button">Dry run</button></div>
    <div id="dry-run-result" role="status"></div></div>
  ${importerDetails(imp)}
  <div class="card" id="mail-focus" hidden></div>
  <div class="card" id="mails" data-importer="${esc(imp.id)}">
    <h2>Mails in Error</h2>
    <p class="muted small">Mails the import sent to the Error folder, and why. Fix the cause (the rules above, the sender…), then <strong>Reprocess</strong> puts the mail back in the Inbox for the next import.</p>
    <div id="mails-notice"></div>
    <div id="error-mails"><p class="muted">Loading…</p></div>
    <h3>Recent mails</h3>
    <div id="recent-mails"><p class="muted">Loading…</p></div>
  </div>`}`;
}

// What is stored beyond the form's fields: write-only keys (set or not), the
// app's certificate, limits the form does not edit.
function importerDetails(imp) {
  const yes = (b) => (b ? "yes" : "no");
  const smime = imp.smime || {};
  const cert = imp.client_certificate;
  const rows = [
    ...(cert ? [
      ["certificate.subject", "App certificate", esc(cert.subject)],
      ["certificate.thumbprint", "Thumbprint (SHA-1, as the Azure portal lists it)", `<code>${esc(cert.thumbprint)}</code>`],
      ["certificate.not_after", "Certificate expires", esc(String(cert.not_after || "").slice(0, 10) || "–")],
      ["client_private_key_set", "Private key stored", yes(imp.client_private_key_set)],
    ] : []),
    ["max_mail_bytes", "Largest mail", `${esc(imp.max_mail_bytes)} bytes`],
    ["max_attempts", "Attempts before Error", esc(imp.max_attempts)],
    ["zip_passwords", "ZIP passwords for", (imp.zip_passwords || []).length ? imp.zip_passwords.map((z) => `<code>${esc(z.sender)}</code>`).join(", ") : "–"],
    ["zip_keep_archive", "Keep the ZIP beside its files", yes(imp.zip_keep_archive ?? true)],
    ["smime.trust", "S/MIME trust", `custom CA: ${yes(smime.trusted_ca_pem)} · system root CAs: ${yes(smime.platform_roots ?? true)}`],
    ["smime.on_bad_signature", "Bad S/MIME signature", esc(Object.fromEntries(ON_BAD_SIGNATURE)[smime.on_bad_signature] || smime.on_bad_signature || "–")],
    ["smime.key_set", "S/MIME key stored", yes(smime.key_set)],
  ];
  return `<div class="card" id="details"><h2>Stored settings</h2><table><tbody>
    ${rows.map(([key, label, value]) => `<tr><th>${esc(label)}</th><td data-detail="${key}">${value}</td></tr>`).join("")}
  </tbody></table></div>`;
}

// The ZIP rows as submitted: blank rows are left out, and each row's error
// slots take the index the API will name (zip_passwords[i].sender).
function zipPasswords(form) {
  const out = [];
  for (const row of form.querySelectorAll("[data-zip-row]")) {
    const sender = row.querySelector('[data-zip="sender"]').value.trim();
    const password = row.querySelector('[data-zip="password"]').value;
    row.querySelectorAll("[data-zip-error]").forEach((slot) => { slot.textContent = ""; slot.removeAttribute("data-error"); });
    if (!sender && !password) continue;
    row.querySelectorAll("[data-zip-error]").forEach((slot) => (slot.dataset.error = `zip_passwords[${out.length}].${slot.dataset.zipError}`));
    // Write-only: an empty password keeps the one stored for this sender.
    out.push({ sender, ...(password && { password }) });
  }
  return out;
}

// A chosen file's content in base64 (FileReader gives a data: URL; its prefix goes).
function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(String(reader.result).replace(/^data:[^,]*,/, "")));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

// files.pkcs12: the chosen PKCS#12 file in base64 (read before, as FileReader is asynchronous).
function readForm(form, isNew, imp = {}, files = {}) {
  const get = (f) => form.querySelector(`[data-field="${f}"]`);
  const val = (f) => get(f).value.trim();
  const list = (f) => val(f).split(",").map((x) => x.trim()).filter(Boolean);
  const protocol = val("protocol");
  const body = {
    name: val("name"), protocol,
    folders: { inbox: val("folders.inbox"), exported: val("folders.exported"), error: val("folders.error") },
    attachments: {
      allowed_types: list("attachments.allowed_types"),
      allowed_extensions: list("attachments.allowed_extensions"),
      include_inline: get("attachments.include_inline").checked,
      min_size: Number(val("attachments.min_size") || 0),
      exclude_names: list("attachments.exclude_names"),
      include_names: list("attachments.include_names"),
    },
    rules: { sender_allow: list("rules.sender_allow"), subject_block: list("rules.subject_block") },
    import_body: val("import_body"),
    zip_passwords: zipPasswords(form),
    zip_keep_archive: get("zip_keep_archive").checked,
    // Not on the form: kept as they are.
    ...(imp.max_mail_bytes && { max_mail_bytes: imp.max_mail_bytes, max_attempts: imp.max_attempts }),
    sink: sinkBody(val),
  };
  const xoauth2 = protocol === "imap" && val("auth") === "xoauth2";
  if (protocol === "imap") {
    Object.assign(body, { host: val("host"), security: val("security"), username: val("username"), auth: val("auth") });
    if (val("port")) body.port = Number(val("port"));
    if (val("password") && !xoauth2) body.password = val("password");
    if (val("tls_ca_pem").trim()) body.tls_ca_pem = val("tls_ca_pem");
  }
  if (protocol !== "imap" || xoauth2) {
    Object.assign(body, { client_id: val("client_id"), tenant_id: val("tenant_id"), cloud: val("cloud") });
    if (!xoauth2) body.mailbox = val("mailbox");
    // Only the chosen credential's fields: the API takes a secret or a certificate, never both.
    if (val("credential") === "certificate") {
      body.client_certificate_pem = val("client_certificate_pem");
      if (val("client_private_key_pem")) body.client_private_key_pem = val("client_private_key_pem");
    } else {
      if (val("client_secret")) body.client_secret = val("client_secret");
      if (val("client_secret_expires_at")) body.client_secret_expires_at = val("client_secret_expires_at");
    }
    const authority = val("endpoints.authority"), graph = xoauth2 ? "" : val("endpoints.graph");
    if (authority || graph) body.endpoints = { ...(authority && { authority }), ...(graph && { graph }) };
  }
  // The key and its password are write-only: omitted, the stored key stays; "" removes it.
  const smime = { platform_roots: get("smime.platform_roots").checked, on_bad_signature: val("smime.on_bad_signature") };
  if (val("smime.trusted_ca_pem")) smime.trusted_ca_pem = val("smime.trusted_ca_pem");
  const p12Password = get("smime.pkcs12_password").value;
  if (get("smime.remove_key")?.checked) smime.key_pkcs12_base64 = "";
  else if (files.pkcs12 !== undefined) Object.assign(smime, { key_pkcs12_base64: files.pkcs12, pkcs12_password: p12Password });
  else if (p12Password) smime.pkcs12_password = p12Password; // the API says the file is missing
  body.smime = smime;
  return body;
}

function showFieldErrors(form, problem) {
  form.querySelectorAll("[data-error]").forEach((e) => (e.textContent = ""));
  const unplaced = [];
  for (const err of problem?.errors || []) {
    const base = err.field.replace(/\[\d+\]$/, "");
    const slot = form.querySelector(`[data-error="${CSS.escape(base)}"]`);
    if (slot) slot.textContent = err.message; else unplaced.push(`${err.field}: ${err.message}`);
  }
  const notice = form.querySelector("#form-notice");
  notice.innerHTML = `<div class="notice bad">${esc(problem?.detail || problemText(problem))}${unplaced.length ? `<br>${unplaced.map(esc).join("<br>")}` : ""}</div>`;
}

function toggleSections(form) {
  const protocol = form.querySelector('[data-field="protocol"]').value;
  // IMAP with XOAUTH2 signs in with an Azure app: its fields, without Graph's own.
  const xoauth2 = protocol === "imap" && form.querySelector('[data-field="auth"]').value === "xoauth2";
  form.querySelector('[data-section="graph"]').hidden = protocol === "imap" && !xoauth2;
  form.querySelector('[data-section="imap"]').hidden = protocol !== "imap";
  for (const field of ["mailbox", "endpoints.graph"]) form.querySelector(`[data-wrap="${field}"]`).hidden = xoauth2;
  form.querySelector('[data-wrap="password"]').hidden = xoauth2;
  const certificate = form.querySelector('[data-field="credential"]').value === "certificate";
  for (const field of ["client_secret", "client_secret_expires_at"]) form.querySelector(`[data-wrap="${field}"]`).hidden = certificate;
  form.querySelector('[data-section="certificate"]').hidden = !certificate;
  const removeKey = form.querySelector('[data-field="smime.remove_key"]');
  for (const field of ["smime.key_pkcs12_base64", "smime.pkcs12_password"]) form.querySelector(`[data-field="${field}"]`).disabled = !!removeKey?.checked;
  const auth = form.querySelector("#authenticate");
  if (auth) auth.hidden = !(protocol === "graph_delegated" || xoauth2);
  const sinkKind = form.querySelector('[data-field="sink.kind"]').value;
  for (const kind of ["webhook", "s3"]) form.querySelectorAll(`[data-section="${kind}"]`).forEach((e) => (e.hidden = sinkKind !== kind));
}

// opts.documentId: show the mail that made this document (the Documents page's "Mail" link).
async function importerPage(id, opts = {}) {
  let imp = { folders: null };
  if (id !== "new") {
    const res = await api("GET", `/api/v2/importers/email/${encodeURIComponent(id)}`);
    if (!res.ok) { view.innerHTML = unavailable(res, "This importer"); return; }
    imp = res.data;
  }
  view.innerHTML = importerForm(imp);
  const form = document.getElementById("importer-form");
  toggleSections(form);
  form.querySelector('[data-field="protocol"]').addEventListener("change", () => toggleSections(form));
  form.querySelector('[data-field="auth"]').addEventListener("change", () => toggleSections(form));
  form.querySelector('[data-field="sink.kind"]').addEventListener("change", () => toggleSections(form));
  form.querySelector('[data-field="credential"]').addEventListener("change", () => toggleSections(form));
  form.querySelector('[data-field="smime.remove_key"]')?.addEventListener("change", () => toggleSections(form));
  const zipRows = form.querySelector("#zip-rows");
  form.querySelector("#zip-add").addEventListener("click", () => {
    zipRows.insertAdjacentHTML("beforeend", zipRow());
    zipRows.lastElementChild.querySelector('[data-zip="sender"]').focus();
  });
  zipRows.addEventListener("click", (ev) => ev.target.closest("[data-zip-remove]")?.closest("[data-zip-row]").remove());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const p12 = form.querySelector('[data-field="smime.key_pkcs12_base64"]');
    const files = {};
    if (p12.files.length && !p12.disabled) {
      files.pkcs12 = await fileBase64(p12.files[0]).catch(() => "");
      // "" would remove the stored key: an empty or unreadable file is refused here.
      if (!files.pkcs12) { showFieldErrors(form, { detail: "The PKCS#12 file could not be read.", errors: [{ field: "smime.key_pkcs12_base64", message: "is empty or unreadable: choose the .p12/.pfx file again" }] }); return; }
    }
    if (form.querySelector('[data-field="credential"]').value === "certificate" && !form.querySelector('[data-field="client_certificate_pem"]').value.trim()
        && !form.querySelector('[data-section="graph"]').hidden) {
      showFieldErrors(form, { detail: "The certificate is missing.", errors: [{ field: "client_certificate_pem", message: "is required: the certificate uploaded to the app registration, as PEM (or choose Client secret)" }] });
      return;
    }
    const body = readForm(form, !imp.id, imp, files);
    const res = imp.id ? await api("PUT", `/api/v2/importers/email/${encodeURIComponent(imp.id)}`, body) : await api("POST", "/api/v2/importers/email", body);
    if (!res.ok) { showFieldErrors(form, res.data); return; }
    const saved = res.data;
    sessionStorage.setItem("saved-notice", JSON.stringify({ id: saved.id, required: saved.authentication_required, notice: saved.authentication_notice || null }));
    if (!imp.id) location.hash = `#/importers/${saved.id}`; else importerPage(saved.id);
  });
  if (!imp.id) return;
  showSavedNotice(form, imp);
  form.querySelector("#delete").addEventListener("click", async () => {
    if (!confirm(`Delete importer “${imp.name}” and its authorization?`)) return;
    const res = await api("DELETE", `/api/v2/importers/email/${encodeURIComponent(imp.id)}`);
    if (res.ok) location.hash = "#/importers"; else showFieldErrors(form, res.data);
  });
  form.querySelector("#test").addEventListener("click", () => runConnectionTest(imp.id));
  form.querySelectorAll("[data-pick]").forEach((b) => b.addEventListener("click", () => pickFolder(imp.id, b.dataset.pick, form)));
  // The sections load side by side; a jump to one of them waits for all,
  // or those above it would push it out of view as they fill.
  const loaded = Promise.allSettled([loadStatus(imp), loadRuns(imp), loadMails(imp)]);
  document.getElementById("dry-run-button").addEventListener("click", () => dryRun(imp));
  const shown = location.hash;
  refreshEvery(10000, () => { loadStatus(imp); loadRuns(imp); }, () => location.hash === shown);
  if (opts.documentId !== undefined) loaded.then(() => showDocumentMail(imp, opts.documentId));
  else if (opts.mails) loaded.then(() => document.getElementById("mails").scrollIntoView());
}

// The seed's dialog after saving: authentication is needed, and declining is fine.
function showSavedNotice(form, imp) {
  const raw = sessionStorage.getItem("saved-notice");
  sessionStorage.removeItem("saved-notice");
  const saved = raw ? JSON.parse(raw) : null;
  const box = form.querySelector("#form-notice");
  if (!saved || saved.id !== imp.id) return;
  if (saved.required) {
    box.innerHTML = `<div class="notice" id="auth-prompt">Saved. ${esc(saved.notice || "mailferry is not authorized for this mailbox yet.")}
      Start the authentication now? <span class="actions"><a class="button" href="/api/v2/importers/email/${esc(imp.id)}/authenticate">Authenticate now</a>
      <button type="button" class="secondary" id="decline">Not now</button></span></div>`;
    box.querySelector("#decline").addEventListener("click", () => (box.innerHTML = `<div class="notice ok">Saved. You can authenticate later with the Authenticate button.</div>`));
  } else {
    box.innerHTML = `<div class="notice ok">Saved.</div>`;
  }
}

// The importer's health (the overview's entry for it) and its authorization.
async function loadStatus(imp) {
  const box = document.getElementById("status");
  const [res, health] = await Promise.all([
    api("GET", `/api/v2/importers/email/${encodeURIComponent(imp.id)}/status`),
    api("GET", `/api/v2/overview?importer_id=${encodeURIComponent(imp.id)}`),
  ]);
  if (!box?.isConnected) return;
  if (!res.ok) { box.innerHTML = `<h2>Health</h2>${unavailable(res, "The status")}`; return; }
  const a = res.data.auth || {};
  const [authCls, authWords] = AUTH_STATES[a.state] || ["neutral", a.state];
  const e = health.ok ? health.data[0] : null;
  const warnings = [...new Set([...(res.data.warnings || []), ...(imp.warnings || [])])];
  box.innerHTML = `<h2>Health ${e ? stateBadge(e) : ""}</h2>
    ${e?.state_detail ? `<div class="notice ${(STATES[e.state] || [])[0] === "bad" ? "bad" : ""}" id="state-detail" data-state="${esc(e.state)}">${esc(e.state_detail)}</div>` : ""}
    <p>Authorization: <span class="badge ${authCls}" id="auth-state" data-state="${esc(a.state)}">${esc(authWords)}</span> ${a.account ? `as <strong>${esc(a.account)}</strong>` : ""}</p>
    <table><tbody>
      <tr><th>Last import</th><td id="last-import">${e ? lastRunWords(e.last_run) : "–"}</td></tr>
      <tr><th>Next run</th><td>${e?.next_run_at ? when(e.next_run_at) : "no enabled import-emails job works this importer"}</td></tr>
      <tr><th>Access token</th><td>${countdown(a.access_token_expires_at, "access token")}</td></tr>
      <tr><th>Refresh token</th><td>${e?.refresh_token_expires_at ? `${countdown(e.refresh_token_expires_at, "refresh token")} <span class="small muted">if unused (Microsoft's 90-day limit); last used ${when(e.refresh_token_last_used_at)}</span>` : "–"}</td></tr>
      <tr><th>Last refresh</th><td>${when(a.last_refresh_at)}</td></tr>
      <tr><th>Last error</th><td>${esc(a.last_error || "–")}</td></tr>
    </tbody></table>
    ${warnings.map((w) => `<div class="notice" data-warning>${esc(w)}</div>`).join("")}`;
}

function duration(start, end) {
  if (!start || !end) return "–";
  const s = Math.max(0, Math.round((new Date(end) - new Date(start)) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

const RUN_STATUS = { succeeded: "ok", failed: "bad", running: "info" };

async function loadRuns(imp) {
  const box = document.getElementById("runs");
  const res = await api("GET", `/api/v2/importers/email/${encodeURIComponent(imp.id)}/runs?limit=10`);
  if (!box?.isConnected) return;
  if (!res.ok) { box.innerHTML = `<h2>Recent runs</h2>${unavailable(res, "The runs")}`; return; }
  box.innerHTML = `<h2>Recent runs</h2>${res.data.length ? `<table><thead><tr><th>Started</th><th>Result</th><th>Summary</th><th>Took</th></tr></thead><tbody>
    ${res.data.map((r) => `<tr data-run="${esc(r.execution_id)}"><td>${when(r.started_at)}</td>
      <td><span class="badge ${RUN_STATUS[r.status] || "neutral"}">${esc(r.status)}</span></td>
      <td>${esc(r.summary)} <a class="small" href="#/executions/${esc(r.execution_id)}">log</a></td><td>${esc(duration(r.started_at, r.finished_at))}</td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">No run yet.</p>`}`;
}

// The dry run's outcomes in the words of the mail list.
const PREDICTIONS = {
  import: ["ok", "would be imported"],
  error: ["bad", "would go to Error"],
  already_imported: ["neutral", "already imported"],
  already_error: ["neutral", "already in Error"],
  retry: ["warn", "left for a later run"],
};

async function dryRun(imp) {
  const out = document.getElementById("dry-run-result");
  const button = document.getElementById("dry-run-button");
  button.disabled = true;
  out.innerHTML = `<p class="muted">Reading the Inbox…</p>`;
  const res = await api("POST", `/api/v2/importers/email/${encodeURIComponent(imp.id)}/dry-run`);
  button.disabled = false;
  if (!res.ok) { out.innerHTML = `<div class="notice bad">${esc(problemText(res.data))}</div>`; return; }
  if (!res.data.length) { out.innerHTML = `<p class="muted" id="dry-run-empty">The Inbox is empty: the next run has nothing to do.</p>`; return; }
  out.innerHTML = mailTable(["Subject", "From", "Received", "Fate"], res.data.map((m) => {
    const [cls, words] = PREDICTIONS[m.outcome] || ["neutral", m.outcome];
    return `<tr data-prediction="${esc(m.outcome)}">${mailCells(m)}<td><span class="badge ${cls}">${esc(words)}</span>
      ${m.reason ? `<div class="reason"><strong>${esc(REASONS[m.reason] || m.reason)}</strong> <code>${esc(m.reason)}</code></div>` : ""}
      ${m.detail ? `<div class="small">${esc(m.detail)}</div>` : ""}
      ${m.attachments.length ? `<div class="small">files: ${m.attachments.map((f) => `<code>${esc(f.replace(/^attachments\//, ""))}</code>`).join(", ")}</div>` : ""}
      ${m.skipped.length ? `<div class="small muted">left out: ${esc(m.skipped.join("; "))}</div>` : ""}</td></tr>`;
  }).join(""));
}

// ---------- an importer's mails (its import ledger) ----------

// The reason codes of GET …/mails in a few plain words; the API's detail says the rest.
const REASONS = {
  no_importable_attachment: "nothing to import",
  unparsable: "the mail could not be read",
  "rule:sender_allow": "sender not allowed",
  "rule:subject_block": "subject blocked",
  unstorable: "the document could not be stored",
  too_large: "too large",
  sink_rejected: "refused where documents go",
  retries_exhausted: "failed too many times",
};
const MAIL_STATES = { error: ["bad", "in Error"], exported: ["ok", "imported"], pending: ["warn", "in the Inbox"] };

function mailsPath(importerId, query) {
  return `/api/v2/importers/email/${encodeURIComponent(importerId)}/mails?${new URLSearchParams(query)}`;
}

function mailCells(m) {
  return `<td data-subject>${esc(m.subject || "(no subject)")}</td><td>${esc(m.from || "–")}</td><td>${when(m.received_at)}</td>`;
}

function reasonHtml(m) {
  const r = m.reason;
  const reason = r ? `<div class="reason"><strong>${esc(REASONS[r.code] || r.code)}</strong> <code data-reason-code>${esc(r.code)}</code>
      ${r.detail ? `<div class="small" data-reason-detail>${esc(r.detail)}</div>` : ""}</div>` : "";
  const attempts = m.attempts > 0
    ? `<div class="small muted" data-attempts>${esc(m.attempts)} failed attempt(s)${m.last_error ? `, the last: ${esc(m.last_error)}` : ""}</div>` : "";
  return reason + attempts;
}

function mailOutcome(m) {
  const [cls, label] = MAIL_STATES[m.state] || ["neutral", m.state];
  return `<span class="badge ${cls}" data-state="${esc(m.state)}">${esc(label)}</span>${reasonHtml(m)}
    ${m.document_id ? `<div class="small">document <code data-document-id>${esc(m.document_id)}</code></div>` : ""}`;
}

function mailTable(head, rows) {
  return `<table><thead><tr>${head.map((h) => `<th>${h ? esc(h) : `<span class="sr-only">Actions</span>`}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table>`;
}

// "Mails in Error" (with Reprocess) and "Recent mails" of the importer page.
async function loadMails(imp) {
  const [errors, recent] = await Promise.all([
    api("GET", mailsPath(imp.id, { state: "error", limit: 100 })),
    api("GET", mailsPath(imp.id, { limit: 20 })),
  ]);
  const section = document.getElementById("mails");
  if (!section || section.dataset.importer !== imp.id) return; // the admin left the page meanwhile
  const errBox = document.getElementById("error-mails");
  const recentBox = document.getElementById("recent-mails");
  if (!errors.ok) errBox.innerHTML = unavailable(errors, "The mail list");
  else if (!errors.data.length) errBox.innerHTML = `<p class="muted" id="no-error-mails">No mail is in Error.</p>`;
  else {
    errBox.innerHTML = mailTable(["Subject", "From", "Received", "Reason", ""], errors.data.map((m) => `<tr data-mail="${esc(m.mail_id)}">
        ${mailCells(m)}<td>${reasonHtml(m)}</td>
        <td><button type="button" class="secondary" data-reprocess="${esc(m.mail_id)}">Reprocess</button></td></tr>`).join(""))
      + (errors.data.length === 100 ? `<p class="muted small">The 100 newest are shown.</p>` : "");
    errBox.querySelectorAll("[data-reprocess]").forEach((b) => b.addEventListener("click", () => reprocess(imp, errors.data.find((m) => m.mail_id === b.dataset.reprocess), b)));
  }
  if (!recent.ok) recentBox.innerHTML = unavailable(recent, "The mail list");
  else if (!recent.data.length) recentBox.innerHTML = `<p class="muted">No mail imported or decided yet.</p>`;
  else recentBox.innerHTML = mailTable(["Subject", "From", "Received", "Fate"],
    recent.data.map((m) => `<tr data-mail="${esc(m.mail_id)}">${mailCells(m)}<td>${mailOutcome(m)}</td></tr>`).join(""));
}

async function reprocess(imp, mail, button) {
  button.disabled = true;
  const res = await api("POST", `/api/v2/importers/email/${encodeURIComponent(imp.id)}/mails/${encodeURIComponent(mail.mail_id)}/reprocess`);
  const subject = `<div class="small muted">${esc(mail.subject || "(no subject)")}${mail.from ? ` · ${esc(mail.from)}` : ""}</div>`;
  document.getElementById("mails-notice").innerHTML = res.ok
    ? `<div class="notice ok" id="reprocess-result">Back in the Inbox: the next import decides it again.${subject}</div>`
    : `<div class="notice bad" id="reprocess-result">${esc(problemText(res.data))}${subject}</div>`;
  loadMails(imp);
}

// The Documents page's "Mail" link: the one mail that made a document.
async function showDocumentMail(imp, documentId) {
  const box = document.getElementById("mail-focus");
  box.hidden = false;
  box.innerHTML = `<h2>The mail of document <code>${esc(documentId)}</code></h2><p class="muted">Loading…</p>`;
  const res = await api("GET", mailsPath(imp.id, { document_id: documentId }));
  const body = !res.ok ? unavailable(res, "The mail list")
    : !res.data.length ? `<p class="muted">No mail of this importer made this document.</p>`
    : mailTable(["Subject", "From", "Received", "Fate", "Decided"], res.data.map((m) => `<tr data-mail="${esc(m.mail_id)}">${mailCells(m)}
        <td>${mailOutcome(m)}${m.internet_message_id ? `<div class="small muted">${esc(m.internet_message_id)}</div>` : ""}</td><td>${when(m.decided_at)}</td></tr>`).join(""));
  // Named by its subject and sender once known; the document id stays for reference.
  const m = res.ok && res.data.length === 1 ? res.data[0] : null;
  const title = m ? `The mail ${esc(m.subject ? `“${m.subject}”` : "(no subject)")} from ${esc(m.from || "an unknown sender")}` : "The mail of this document";
  box.innerHTML = `<h2>${title}</h2><p class="small muted">document <code>${esc(documentId)}</code></p>${body}
    <div class="actions"><a class="button secondary" href="#/documents">All documents</a></div>`;
  box.scrollIntoView();
}

// A check that was not run because an earlier one failed is "not checked",
// never "failed".
const CHECK_STATUS = { passed: ["ok", "passed"], failed: ["bad", "failed"], not_checked: ["neutral", "not checked"] };

async function runConnectionTest(id) {
  const box = document.getElementById("test-result");
  box.innerHTML = `<div class="card"><p class="muted">Testing the mail connection…</p></div>`;
  const res = await api("POST", `/api/v2/importers/email/${encodeURIComponent(id)}/test`);
  if (!res.ok) { box.innerHTML = `<div class="card"><h2>Mail connection test</h2>${unavailable(res, "The mail connection test")}</div>`; return; }
  const items = res.data.checks.map((c) => {
    const [cls, words] = CHECK_STATUS[c.status] || ["neutral", c.status];
    return `<li data-check="${esc(c.id)}" data-status="${esc(c.status)}"><span class="badge ${cls}">${esc(words)}</span>
      <strong>${esc(c.name)}</strong> — ${esc(c.detail)}${c.fix ? `<br><span class="small">Fix: ${esc(c.fix)}</span>` : ""}</li>`;
  }).join("");
  box.innerHTML = `<div class="card" id="test-card"><h2>Mail connection test: <span class="badge ${res.data.ok ? "ok" : "bad"}">${res.data.ok ? "passed" : "failed"}</span></h2><ul class="checks">${items}</ul></div>`;
}

function treeHtml(nodes) {
  return `<ul class="tree">${nodes.map((n) => `<li><button type="button" class="link" data-path="${esc(n.path)}">${esc(n.name)}</button>
      ${n.children?.length ? treeHtml(n.children) : ""}</li>`).join("")}</ul>`;
}

// Folders come flat or nested from the API; build a tree of {name, path, children}.
function toTree(data) {
  const list = Array.isArray(data) ? data : data.folders || [];
  const nested = list.length && list[0].children !== undefined;
  const norm = (n, parentPath) => {
    const name = n.display_name ?? n.name ?? n.displayName;
    const path = n.path ? (Array.isArray(n.path) ? n.path.join("/") : n.path) : (parentPath ? `${parentPath}/${name}` : name);
    return { name, path, children: (n.children || []).map((c) => norm(c, path)) };
  };
  return nested ? list.map((n) => norm(n, "")) : list.map((n) => norm(n, ""));
}

async function pickFolder(id, key, form) {
  const box = form.querySelector("#folder-picker");
  box.innerHTML = `<p class="muted">Loading the mailbox's folders…</p>`;
  const res = await api("GET", `/api/v2/importers/email/${encodeURIComponent(id)}/folders`);
  if (!res.ok) { box.innerHTML = unavailable(res, "The folder picker"); return; }
  box.innerHTML = `<div class="notice">Choose the ${esc(key)} folder: ${treeHtml(toTree(res.data))}</div>`;
  box.querySelectorAll("[data-path]").forEach((b) => b.addEventListener("click", () => {
    form.querySelector(`[data-field="folders.${key}"]`).value = b.dataset.path;
    box.innerHTML = "";
  }));
}

// ---------- scripts, jobs, executions, documents ----------

// The client's importers by id (names for ids in selects, params and logs).
async function importerNames() {
  const res = await api("GET", "/api/v2/importers/email");
  return new Map((res.ok ? res.data : []).map((i) => [i.id, i.name]));
}

// One input per declared parameter of a script: `importer_id` as a choice
// of importer, booleans as checkboxes, integers as numbers.
function paramFields(script, names, values = {}, prefix = "") {
  if (!script.params.length) return `<p class="muted small">This script takes no parameters.</p>`;
  return script.params.map((p) => {
    const id = `${prefix}param-${script.name}-${p.name}`;
    const value = values[p.name];
    const hint = `<span class="hint">${esc(p.description)}${p.required ? " (required)" : ""}</span>`;
    const error = `<span class="field-error" data-error="${esc(p.name)}"></span>`;
    if (p.name === "importer_id") {
      return `<label for="${id}">Importer ${hint}<select id="${id}" data-param="${esc(p.name)}" data-kind="string">
        <option value="">${p.required ? "choose…" : "all importers"}</option>
        ${[...names].map(([iid, name]) => `<option value="${esc(iid)}" ${iid === value ? "selected" : ""}>${esc(name)}</option>`).join("")}</select>${error}</label>`;
    }
    if (p.kind === "boolean") {
      return `<label class="inline" for="${id}"><input type="checkbox" id="${id}" data-param="${esc(p.name)}" data-kind="boolean" ${value ? "checked" : ""}> ${esc(p.name.replace(/_/g, " "))} ${hint}</label>${error}`;
    }
    return `<label for="${id}">${esc(p.name.replace(/_/g, " "))} ${hint}<input id="${id}" type="${p.kind === "integer" ? "number" : "text"}" data-param="${esc(p.name)}" data-kind="${esc(p.kind)}" value="${esc(value ?? "")}" ${p.kind === "integer" ? 'step="1"' : ""}>${error}</label>`;
  }).join("");
}

// The parameters as the API takes them: empty fields are left out.
function paramValues(root) {
  const params = {};
  root.querySelectorAll("[data-param]").forEach((el) => {
    const name = el.dataset.param;
    if (el.dataset.kind === "boolean") { if (el.checked) params[name] = true; return; }
    const v = el.value.trim();
    if (v === "") return;
    params[name] = el.dataset.kind === "integer" && /^-?\d+$/.test(v) ? Number(v) : v;
  });
  return params;
}

function showParamErrors(root, out, problem) {
  root.querySelectorAll("[data-error]").forEach((e) => (e.textContent = ""));
  for (const err of problem?.errors || []) {
    const slot = root.querySelector(`[data-error="${CSS.escape(err.field.replace(/^params\./, ""))}"]`);
    if (slot) slot.textContent = err.message;
  }
  out.innerHTML = `<div class="notice bad">${esc(problemText(problem))}</div>`;
}

async function scriptsPage() {
  const [res, names] = await Promise.all([api("GET", "/api/v2/scripts"), importerNames()]);
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Scripts</h1>${unavailable(res, "The script list")}</div>`; return; }
  view.innerHTML = `<div class="card"><h1>Scripts</h1><p class="muted">Scripts can be run at any time; jobs run them on a schedule.</p>
    <div id="run-result" role="status"></div></div>
    ${res.data.map((s) => `<form class="card" data-script="${esc(s.name)}" novalidate><h2><code>${esc(s.name)}</code></h2>
      <p>${esc(s.description)}</p>${paramFields(s, names)}
      <div class="actions"><button type="submit" data-run="${esc(s.name)}">Run now</button></div></form>`).join("")}`;
  const out = document.getElementById("run-result");
  view.querySelectorAll("form[data-script]").forEach((form) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", `/api/v2/scripts/${encodeURIComponent(form.dataset.script)}/run`, paramValues(form));
    if (!r.ok) { showParamErrors(form, out, r.data); out.scrollIntoView(); return; }
    location.hash = `#/executions/${r.data.id}`;
  }));
}

const EXEC_STATUS = { succeeded: "ok", failed: "bad", running: "info" };
function execBadge(status, id) {
  return `<span class="badge ${EXEC_STATUS[status] || "neutral"}" ${id ? `id="${id}"` : ""} data-status="${esc(status)}">${esc(status)}</span>`;
}

async function jobsPage() {
  const [res, scripts, names] = await Promise.all([api("GET", "/api/v2/jobs"), api("GET", "/api/v2/scripts"), importerNames()]);
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Jobs</h1>${unavailable(res, "The job list")}</div>`; return; }
  const scriptList = scripts.ok ? scripts.data : [];
  const paramsText = (j) => Object.entries(j.params || {}).map(([k, v]) => `${k}: ${k === "importer_id" ? names.get(v) || v : v}`).join(", ");
  view.innerHTML = `<div class="card"><h1>Jobs</h1>
    <table><thead><tr><th>Script</th><th>Cron</th><th>Time zone</th><th>Enabled</th><th>Next runs</th><th>Last run</th><th><span class="sr-only">Actions</span></th></tr></thead><tbody>
    ${res.data.map((j) => `<tr data-job="${esc(j.id)}">
      <td><code>${esc(j.script)}</code>${j.params && Object.keys(j.params).length ? `<div class="small muted">${esc(paramsText(j))}</div>` : ""}</td>
      <td><input data-k="cron" value="${esc(j.cron)}" size="14" aria-label="Cron expression of ${esc(j.script)}"><div class="small muted" data-desc></div><div class="field-error" data-err="cron"></div></td>
      <td><input data-k="timezone" value="${esc(j.timezone)}" size="16" aria-label="Time zone of ${esc(j.script)}"><div class="field-error" data-err="timezone"></div></td>
      <td><input type="checkbox" data-k="enabled" ${j.enabled ? "checked" : ""} aria-label="${esc(j.script)} enabled"></td>
      <td class="small" data-next></td>
      <td class="small" data-last>${j.last_run_at ? when(j.last_run_at) : "never"}</td>
      <td><span class="actions" style="margin:0"><button type="button" data-save>Save</button><button type="button" class="danger" data-delete>Delete</button></span></td></tr>`).join("")}</tbody></table>
    ${res.data.length ? "" : `<p class="muted">No job: nothing runs on its own.</p>`}</div>
    <form class="card" id="new-job" novalidate><h2>Add a job</h2><div id="new-job-result" role="status"></div>
      <div class="grid3">
        <label for="new-job-script">Script <select id="new-job-script" data-field="script">${scriptList.map((s) => `<option>${esc(s.name)}</option>`).join("")}</select><span class="field-error" data-error="script"></span></label>
        <label for="new-job-cron">Cron <span class="hint">e.g. <code>*/5 * * * *</code></span><input id="new-job-cron" data-field="cron" value="*/5 * * * *"><span class="field-error" data-error="cron"></span></label>
        <label for="new-job-tz">Time zone <input id="new-job-tz" data-field="timezone" value="${esc(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC")}"><span class="field-error" data-error="timezone"></span></label>
      </div>
      <label for="new-job-description">Description <input id="new-job-description" data-field="description"></label>
      <div id="new-job-params"></div>
      <div class="actions"><button type="submit">Add job</button></div></form>`;
  for (const row of view.querySelectorAll("[data-job]")) {
    const job = res.data.find((j) => j.id === row.dataset.job);
    const showNext = async () => {
      const n = await api("GET", `/api/v2/jobs/${encodeURIComponent(job.id)}/next-runs?count=3`);
      if (n.ok) {
        row.querySelector("[data-desc]").textContent = n.data.description;
        row.querySelector("[data-next]").innerHTML = n.data.runs.map((r) => when(r.utc)).join("<br>");
      }
    };
    showNext();
    api("GET", `/api/v2/executions?job_id=${encodeURIComponent(job.id)}&limit=1`).then((e) => {
      if (!e.ok || !e.data.length) return;
      const x = e.data[0];
      row.querySelector("[data-last]").innerHTML = `${execBadge(x.status)} <a href="#/executions/${esc(x.id)}">${when(x.started_at)}</a>`;
    });
    row.querySelector("[data-save]").addEventListener("click", async () => {
      const body = { ...job, cron: row.querySelector('[data-k="cron"]').value, timezone: row.querySelector('[data-k="timezone"]').value, enabled: row.querySelector('[data-k="enabled"]').checked };
      const r = await api("PUT", `/api/v2/jobs/${encodeURIComponent(job.id)}`, body);
      row.querySelectorAll("[data-err]").forEach((e) => (e.textContent = ""));
      if (!r.ok) {
        for (const e of r.data?.errors || []) { const slot = row.querySelector(`[data-err="${e.field}"]`); if (slot) slot.textContent = e.message; }
        if (!(r.data?.errors || []).length) alert(problemText(r.data));
        return;
      }
      Object.assign(job, r.data);
      showNext();
    });
    row.querySelector("[data-delete]").addEventListener("click", async () => {
      if (!confirm(`Delete the ${job.script} job (${job.cron})?`)) return;
      const r = await api("DELETE", `/api/v2/jobs/${encodeURIComponent(job.id)}`);
      if (r.ok) jobsPage(); else alert(problemText(r.data));
    });
  }
  const form = document.getElementById("new-job");
  const scriptSelect = form.querySelector('[data-field="script"]');
  const drawParams = () => {
    const script = scriptList.find((s) => s.name === scriptSelect.value);
    form.querySelector("#new-job-params").innerHTML = script ? `<h3>Parameters</h3>${paramFields(script, names, {}, "job-")}` : "";
  };
  scriptSelect.addEventListener("change", drawParams);
  drawParams();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const val = (f) => form.querySelector(`[data-field="${f}"]`).value.trim();
    const body = { script: val("script"), cron: val("cron"), timezone: val("timezone"), enabled: true, params: paramValues(form), ...(val("description") && { description: val("description") }) };
    const r = await api("POST", "/api/v2/jobs", body);
    if (!r.ok) { showParamErrors(form, form.querySelector("#new-job-result"), r.data); return; }
    jobsPage();
  });
}

// A log line with the client's importers named: "Invoices (0196…)" becomes
// a link named "Invoices" to the importer.
function logHtml(lines, names) {
  let html = esc(lines.join("\n"));
  for (const [id, name] of names) {
    const link = `<a href="#/importers/${esc(id)}" title="${esc(id)}">${esc(name)}</a>`;
    html = html.split(`${esc(name)} (${esc(id)})`).join(link).split(esc(id)).join(link);
  }
  return html;
}

// The run in one line: why it failed, or its last log line (a script's summary).
function execSummary(e) {
  if (e.error) return e.error;
  const log = Array.isArray(e.log) ? e.log : [];
  return log.length ? log[log.length - 1] : "";
}

async function executionsPage(id, params = new URLSearchParams()) {
  const names = await importerNames();
  const nameIds = (text) => { let t = text; for (const [iid, name] of names) t = t.split(`${name} (${iid})`).join(name).split(iid).join(name); return t; };
  if (id) {
    const res = await api("GET", `/api/v2/executions/${encodeURIComponent(id)}`);
    if (!res.ok) { view.innerHTML = `<div class="card">${unavailable(res, "This execution")}</div>`; return; }
    const e = res.data;
    const log = Array.isArray(e.log) ? e.log : [e.log || ""];
    const paramsText = Object.entries(e.params || {}).map(([k, v]) => `${k}: ${k === "importer_id" ? names.get(v) || v : v}`).join(", ");
    view.innerHTML = `<div class="card"><h1>Execution of <code>${esc(e.script)}</code></h1>
      <p>Status: ${execBadge(e.status, "exec-status")} · trigger ${esc(e.trigger)}${paramsText ? ` · ${esc(paramsText)}` : ""}</p>
      <p>Started ${when(e.started_at)} · finished ${when(e.finished_at)} · took ${esc(duration(e.started_at, e.finished_at))}</p>
      ${e.error ? `<div class="notice bad">${esc(nameIds(e.error))}</div>` : ""}
      <pre class="log">${logHtml(log, names)}</pre><a class="button secondary" href="#/executions">All executions</a></div>`;
    if (e.status === "running") setTimeout(() => { if (location.hash === `#/executions/${id}`) executionsPage(id); }, 1000);
    return;
  }
  const [res, scripts, jobs] = await Promise.all([
    api("GET", `/api/v2/executions?${new URLSearchParams([...params].filter(([, v]) => v))}`),
    api("GET", "/api/v2/scripts"), api("GET", "/api/v2/jobs"),
  ]);
  const jobList = jobs.ok ? jobs.data : [];
  const jobName = (jid) => { const j = jobList.find((x) => x.id === jid); return j ? `${j.script} (${j.cron})` : jid; };
  const option = (value, label, current) => `<option value="${esc(value)}" ${value === current ? "selected" : ""}>${esc(label)}</option>`;
  const filters = `<form id="execution-filter" class="grid3" novalidate>
      <label for="filter-script">Script <select id="filter-script" name="script">${option("", "all scripts", params.get("script") || "")}${(scripts.ok ? scripts.data : []).map((s) => option(s.name, s.name, params.get("script"))).join("")}</select></label>
      <label for="filter-job">Job <select id="filter-job" name="job_id">${option("", "all jobs and manual runs", params.get("job_id") || "")}${jobList.map((j) => option(j.id, jobName(j.id), params.get("job_id"))).join("")}</select></label>
      <label for="filter-status">Status <select id="filter-status" name="status">${option("", "any status", params.get("status") || "")}${["running", "succeeded", "failed"].map((st) => option(st, st, params.get("status"))).join("")}</select></label>
    </form>`;
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Executions</h1>${filters}${unavailable(res, "The execution list")}</div>`; }
  else {
    view.innerHTML = `<div class="card"><h1>Executions</h1>${filters}${res.data.length ? `<table id="executions"><thead><tr><th>Script</th><th>Job</th><th>Status</th><th>Started</th><th>Took</th><th>Summary</th></tr></thead><tbody>
      ${res.data.map((e) => `<tr data-execution="${esc(e.id)}" data-status="${esc(e.status)}"><td><a href="#/executions/${esc(e.id)}">${esc(e.script)}</a><div class="small muted">${esc(e.trigger)}</div></td>
        <td class="small">${e.job_id ? esc(jobName(e.job_id)) : "–"}</td><td>${execBadge(e.status)}</td><td>${when(e.started_at)}</td>
        <td>${esc(duration(e.started_at, e.finished_at))}</td><td class="small">${esc(nameIds(execSummary(e)))}</td></tr>`).join("")}
      </tbody></table>` : `<p class="muted" id="no-executions">No execution matches.</p>`}</div>`;
  }
  document.getElementById("execution-filter").addEventListener("change", (ev) => {
    const q = new URLSearchParams([...new FormData(ev.currentTarget)].filter(([, v]) => v));
    location.hash = `#/executions${q.size ? `?${q}` : ""}`;
  });
}

// A document's file: its API address (`inline` shows a PDF or an image in place).
function fileUrl(d, file, inline) {
  return `/api/v2/documents/${encodeURIComponent(d.document_id)}/files/${file.split("/").map(encodeURIComponent).join("/")}${inline ? "?inline=true" : ""}`;
}

const PREVIEWABLE = /^(application\/pdf|image\/(png|jpeg|gif|webp))$/;

function fileLink(d, file, label) {
  return `<a href="${esc(fileUrl(d, file))}" download data-file="${esc(file)}">${esc(label)}</a>`;
}

function documentDetails(d, importerName) {
  const kept = d.sink !== "webhook";
  const atts = d.attachments || [];
  const rows = [
    ["Subject", esc(d.subject || "(no subject)")],
    ["From", esc(d.from || "–")],
    ["To", esc((d.to || []).join ? d.to.join(", ") : d.to || "–")],
    ["Received", when(d.received_at)],
    ["Imported", when(d.imported_at)],
    ["Importer", `<a href="#/importers/${esc(d.importer_id)}">${esc(importerName || d.importer_id)}</a>`],
    ["Message-ID", esc(d.source?.internet_message_id || "–")],
    ["Kept", kept ? esc(d.location) : `handed to the webhook ${esc(d.location)}; mailferry keeps no copy`],
  ];
  const files = atts.map((a) => {
    const name = a.filename || a.file.replace(/^attachments\//, "");
    const preview = kept && PREVIEWABLE.test(a.content_type || "")
      ? (a.content_type === "application/pdf"
        ? `<iframe class="preview" data-preview="${esc(a.file)}" src="${esc(fileUrl(d, a.file, true))}" title="Preview of ${esc(name)}"></iframe>`
        : `<img class="preview" data-preview="${esc(a.file)}" src="${esc(fileUrl(d, a.file, true))}" alt="Preview of ${esc(name)}">`)
      : "";
    return `<li data-attachment="${esc(a.file)}">${kept ? fileLink(d, a.file, name) : esc(name)} <span class="small muted">${esc(a.content_type)} · ${esc(a.size)} bytes</span>${preview}</li>`;
  }).join("");
  return `<table class="meta"><tbody>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</tbody></table>
    <h3>Files</h3><ul class="files">${files || `<li class="muted">no attachment</li>`}${kept ? `<li>${fileLink(d, "message.eml", "the original mail (.eml)")}</li>` : ""}</ul>`;
}

async function documentsPage(params = new URLSearchParams()) {
  const names = await importerNames();
  const query = new URLSearchParams([...params].filter(([, v]) => v));
  // The form's dates are days in the browser's zone; the API takes instants.
  const apiQuery = new URLSearchParams();
  for (const [k, v] of query) {
    const day = new Date(`${v}T00:00`);
    if (k === "until") day.setDate(day.getDate() + 1);
    // Not a day: sent as typed, for the API to say what is wrong with it.
    if ((k === "since" || k === "until") && !Number.isNaN(day.getTime())) apiQuery.set(k, day.toISOString());
    else apiQuery.set(k, v);
  }
  const res = await api("GET", `/api/v2/documents?${apiQuery}`);
  const v = (k) => esc(params.get(k) || "");
  const form = `<form id="document-search" novalidate><div class="grid3">
      <label for="search-subject">Subject <input id="search-subject" name="subject" value="${v("subject")}"><span class="field-error" data-error="subject"></span></label>
      <label for="search-sender">Sender <input id="search-sender" name="sender" value="${v("sender")}"><span class="field-error" data-error="sender"></span></label>
      <label for="search-importer">Importer <select id="search-importer" name="importer_id"><option value="">all importers</option>
        ${[...names].map(([id, name]) => `<option value="${esc(id)}" ${id === params.get("importer_id") ? "selected" : ""}>${esc(name)}</option>`).join("")}</select></label>
      <label for="search-since">Received from <input id="search-since" type="date" name="since" value="${v("since")}"><span class="field-error" data-error="since"></span></label>
      <label for="search-until">Received until <input id="search-until" type="date" name="until" value="${v("until")}"><span class="field-error" data-error="until"></span></label>
    </div><div class="actions"><button type="submit">Search</button> <a class="button secondary" href="#/documents">Clear</a></div></form>`;
  if (!res.ok) {
    view.innerHTML = `<div class="card"><h1>Documents</h1>${form}<div class="notice bad" id="search-error">${esc(problemText(res.data))}</div></div>`;
    for (const e of res.data?.errors || []) { const slot = view.querySelector(`[data-error="${CSS.escape(e.field)}"]`); if (slot) slot.textContent = e.message; }
  } else {
    const mailLink = (d) => `#/importers/${encodeURIComponent(d.importer_id)}/mails?${new URLSearchParams({ document_id: d.document_id })}`;
    view.innerHTML = `<div class="card"><h1>Documents</h1>${form}
      <p class="muted small" id="document-count">${res.data.length} document(s)${query.size ? " match" : ""}${res.data.length === 100 ? " (the 100 newest)" : ""}.</p>
      ${res.data.length ? `<table id="documents"><thead><tr><th>Subject</th><th>From</th><th>Received</th><th>Importer</th><th>Attachments</th><th><span class="sr-only">Links</span></th></tr></thead><tbody>
      ${res.data.map((d) => `<tr data-document="${esc(d.document_id)}"><td data-subject>${esc(d.subject || "(no subject)")}</td><td>${esc(d.from)}</td><td>${when(d.received_at || d.imported_at)}</td>
        <td>${esc(names.get(d.importer_id) || d.importer_id)}</td>
        <td>${(d.attachments || []).map((a) => d.sink !== "webhook" ? fileLink(d, a.file, a.filename || a.file.replace(/^attachments\//, "")) : esc(a.filename || a.file)).join(", ") || `<span class="muted">–</span>`}</td>
        <td><button type="button" class="link" data-details aria-expanded="false">Details</button> · <a href="${esc(mailLink(d))}" data-mail-link title="the mail this document was made from">Mail</a></td></tr>
        <tr data-details-for="${esc(d.document_id)}" hidden><td colspan="6"></td></tr>`).join("")}
      </tbody></table>` : `<p class="muted" id="no-documents">No document${query.size ? " matches" : " yet"}.</p>`}</div>`;
    view.querySelectorAll("[data-details]").forEach((b) => b.addEventListener("click", () => {
      const id = b.closest("tr").dataset.document;
      const row = view.querySelector(`tr[data-details-for="${CSS.escape(id)}"]`);
      const d = res.data.find((x) => x.document_id === id);
      if (row.hidden) row.querySelector("td").innerHTML = documentDetails(d, names.get(d.importer_id));
      row.hidden = !row.hidden;
      b.setAttribute("aria-expanded", String(!row.hidden));
    }));
  }
  document.getElementById("document-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams([...new FormData(ev.currentTarget)].filter(([, x]) => String(x).trim()));
    location.hash = `#/documents${q.size ? `?${q}` : ""}`;
  });
}

// Who changed what and when: importers, jobs, sign-ins, authorizations.
async function auditPage() {
  const res = await api("GET", "/api/v2/audit?limit=200");
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Audit log</h1>${unavailable(res, "The audit log")}</div>`; return; }
  view.innerHTML = `<div class="card"><h1>Audit log</h1><p class="muted">The last 200 events; kept for a year.</p>${res.data.length ? `<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Details</th></tr></thead><tbody>
    ${res.data.map((e) => `<tr data-audit="${esc(e.action)}"><td>${when(e.at)}</td><td>${esc(e.actor_name || e.actor)}</td><td><code>${esc(e.action)}</code></td><td>${esc(e.detail)}${e.target ? ` <span class="muted small">${esc(e.target)}</span>` : ""}</td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">Nothing recorded yet.</p>`}</div>`;
}

// Where alerts go (a webhook, e-mail through SMTP), a test alert, and the
// problems alerted about.
async function alertsPage() {
  const [settingsRes, alertsRes] = await Promise.all([api("GET", "/api/v2/alerts/settings"), api("GET", "/api/v2/alerts")]);
  if (!settingsRes.ok) { view.innerHTML = `<div class="card"><h1>Alerts</h1>${unavailable(settingsRes, "The alert settings")}</div>`; return; }
  const a = settingsRes.data;
  const smtp = a.smtp || {};
  const severity = (s) => `<span class="badge ${s === "critical" ? "bad" : "warn"}">${esc(s)}</span>`;
  const alerts = alertsRes.ok ? alertsRes.data : [];
  view.innerHTML = `<div class="card"><h1>Alerts</h1>
    <p class="muted">Sent when an importer needs re-authentication, cannot open its mailbox, fails several runs in a row, or a secret or token is about to run out: once per problem, again after a day, and "resolved" when it clears.</p>
    <form id="alert-settings" novalidate>
      <div class="grid2">
        ${input("webhook_url", "Webhook URL", a.webhook_url, { placeholder: "https://hooks.example.com/mailferry", hint: "receives each alert as JSON" })}
        ${input("emails", "E-mail addresses", (a.emails || []).join(", "), { hint: "comma-separated" })}
      </div>
      <h3>SMTP server</h3>
      <div class="grid3">
        ${input("smtp.host", "Host", smtp.host, { placeholder: "smtp.example.com" })}
        ${input("smtp.port", "Port", smtp.port ?? "", { type: "number", placeholder: "587" })}
        <label>Security <select data-field="smtp.security">${["starttls", "tls", "none"].map((k) => `<option ${k === (smtp.security || "starttls") ? "selected" : ""}>${k}</option>`).join("")}</select></label>
        ${input("smtp.username", "Username", smtp.username)}
        ${input("smtp.password", "Password", "", { type: "password", hint: smtp.password_set ? "stored — leave empty to keep it" : "write-only", extra: 'autocomplete="new-password"' })}
        ${input("smtp.from", "From", smtp.from, { placeholder: "mailferry <alerts@example.com>" })}
      </div>
      <label class="inline"><input type="checkbox" data-field="log" ${a.log ? "checked" : ""}> Write alerts to the server log <span class="hint">one WARN line per alert (target <code>mailferry::alert</code>); no network</span></label>
      ${input("failing_runs", "Alert after this many failed runs in a row", a.failing_runs ?? 3, { type: "number" })}
      <div class="actions"><button type="submit">Save</button> <button type="button" class="secondary" id="test-alert">Send test alert</button></div>
      <div id="alert-result" role="status"></div>
    </form></div>
    <div class="card"><h2>Problems alerted about</h2>${alerts.length ? `<table><thead><tr><th>Severity</th><th>Problem</th><th>What to do</th><th>Raised</th><th>Resolved</th></tr></thead><tbody>
      ${alerts.map((x) => `<tr data-alert="${esc(x.problem.key)}"><td>${severity(x.problem.severity)}</td><td>${esc(x.problem.summary)}</td><td>${esc(x.problem.fix)}</td><td>${when(x.raised_at)}</td><td>${x.resolved_at ? when(x.resolved_at) : "open"}</td></tr>`).join("")}
      </tbody></table>` : `<p class="muted">No problem so far.</p>`}</div>`;
  const form = document.getElementById("alert-settings");
  const out = document.getElementById("alert-result");
  const val = (f) => form.querySelector(`[data-field="${f}"]`).value.trim();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const smtpHost = val("smtp.host");
    const body = {
      webhook_url: val("webhook_url") || null,
      emails: val("emails").split(",").map((e) => e.trim()).filter(Boolean),
      log: form.querySelector('[data-field="log"]').checked,
      failing_runs: Number(val("failing_runs") || 3),
      smtp: smtpHost ? {
        host: smtpHost, security: val("smtp.security"), from: val("smtp.from"),
        ...(val("smtp.port") && { port: Number(val("smtp.port")) }),
        ...(val("smtp.username") && { username: val("smtp.username") }),
        ...(val("smtp.password") && { password: val("smtp.password") }),
      } : null,
    };
    const res = await api("PUT", "/api/v2/alerts/settings", body);
    out.innerHTML = res.ok ? `<div class="notice ok">Saved.</div>` : `<div class="notice bad">${esc(problemText(res.data))}</div>`;
  });
  document.getElementById("test-alert").addEventListener("click", async () => {
    out.innerHTML = `<p class="muted">Sending…</p>`;
    const res = await api("POST", "/api/v2/alerts/test");
    out.innerHTML = res.ok
      ? `<div class="notice ok">Test alert sent to ${esc(res.data.delivered.join(" and "))}.${res.data.failed.length ? ` Not reached: ${esc(res.data.failed.join("; "))}` : ""}</div>`
      : `<div class="notice bad">${esc(problemText(res.data))}</div>`;
  });
}

// ---------- routing ----------

// Routes: #/ and #/overview (the start page), #/importers[/{id}[/mails[?document_id=…]]],
// #/scripts, #/jobs, #/executions[/{id}][?script&job_id&status],
// #/documents[?subject&sender&since&until&importer_id], #/audit, #/alerts.
async function route() {
  navigation += 1;
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  try {
    switch (parts[0]) {
      case "importers":
        if (!parts[1]) return importersPage();
        return importerPage(parts[1], { mails: parts[2] === "mails", documentId: params.get("document_id") ?? undefined });
      case "":
      case "overview": return overviewPage();
      case "scripts": return scriptsPage();
      case "jobs": return jobsPage();
      case "executions": return executionsPage(parts[1], params);
      case "documents": return documentsPage(params);
      case "audit": return auditPage();
      case "alerts": return alertsPage();
      default: location.hash = "#/overview";
    }
  } catch (e) {
    view.innerHTML = `<div class="notice bad">${esc(e.message)}</div>`;
  }
}

// Phone width shows tables as cards: each cell says its column's name.
function labelCells(root) {
  root.querySelectorAll("table").forEach((table) => {
    const heads = [...table.querySelectorAll(":scope > thead th")].map((th) => th.textContent.trim());
    if (!heads.length) return;
    table.querySelectorAll(":scope > tbody > tr").forEach((tr) => {
      if (tr.children.length !== heads.length) return; // a row spanning the columns (a document's details)
      [...tr.children].forEach((td, i) => { if (td.tagName === "TD" && heads[i] && !td.dataset.label) td.dataset.label = heads[i]; });
    });
  });
}
new MutationObserver(() => labelCells(view)).observe(view, { childList: true, subtree: true });

async function start() {
  const res = await fetch("/ui/session", { credentials: "same-origin" });
  if (!res.ok) { location.href = "/ui/login"; return; }
  session = await res.json();
  document.getElementById("who").textContent = `${session.email} · client ${session.client}`;
  window.addEventListener("hashchange", route);
  route();
}

start();
