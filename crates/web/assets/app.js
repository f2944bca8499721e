// mailferry admin UI: a thin page over the REST API (/api/v2). Every action
// is an API call with the session cookie and the CSRF token; nothing here
// knows more than the API tells it.

const view = document.getElementById("view");
let session = null;

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (session) headers["X-CSRF-Token"] = session.csrf_token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { location.href = "/ui/login"; throw new Error("signed out"); }
  const text = await res.text();
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

// ---------- importers ----------

const PROTOCOLS = {
  graph_delegated: "Microsoft Graph API Delegated",
  graph_client_credentials: "Microsoft Graph API Client Credentials",
  imap: "IMAP",
};

function authBadge(imp) {
  if (imp.protocol !== "graph_delegated" && imp.auth !== "xoauth2") return `<span class="badge neutral">no user authorization</span>`;
  return imp.authentication_required
    ? `<span class="badge warn">authentication required</span>`
    : `<span class="badge ok">authorized</span>`;
}

async function importersPage() {
  const res = await api("GET", "/api/v2/importers/email");
  if (!res.ok) { view.innerHTML = unavailable(res, "The importer list"); return; }
  const rows = res.data.map((i) => `<tr>
      <td><a href="#/importers/${esc(i.id)}">${esc(i.name)}</a></td>
      <td>${esc(PROTOCOLS[i.protocol] || i.protocol)}</td>
      <td>${esc(i.mailbox || i.username || "(authorizing user)")}</td>
      <td>${authBadge(i)} ${i.warnings.length ? `<span class="badge bad" title="${esc(i.warnings.join("\n"))}">${i.warnings.length} warning(s)</span>` : ""}</td>
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
  ${isNew ? "" : `<div class="card" id="status"><h2>Status</h2><p class="muted">Loading…</p></div>
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
  loadStatus(imp);
  loadMails(imp);
  if (opts.documentId !== undefined) showDocumentMail(imp, opts.documentId);
  else if (opts.mails) document.getElementById("mails").scrollIntoView();
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

async function loadStatus(imp) {
  const box = document.getElementById("status");
  const res = await api("GET", `/api/v2/importers/email/${encodeURIComponent(imp.id)}/status`);
  if (!res.ok) { box.innerHTML = `<h2>Status</h2>${unavailable(res, "The status")}`; return; }
  const a = res.data.auth || {};
  const badge = { authorized: "ok", reauth_required: "bad", mailbox_denied: "bad", unauthenticated: "warn", not_applicable: "neutral" }[a.state] || "neutral";
  const last = res.data.last_import;
  const warnings = [...(res.data.warnings || []), ...(imp.warnings || [])];
  box.innerHTML = `<h2>Status</h2>
    <p>Authorization: <span class="badge ${badge}" id="auth-state">${esc(a.state)}</span> ${a.account ? `as <strong>${esc(a.account)}</strong>` : ""}</p>
    <table><tbody>
      <tr><th>Access token expires</th><td>${when(a.access_token_expires_at)}</td></tr>
      <tr><th>Last refresh</th><td>${when(a.last_refresh_at)}</td></tr>
      <tr><th>Last error</th><td>${esc(a.last_error || "–")}</td></tr>
      <tr><th>Last import</th><td id="last-import">${last ? `${esc(last.summary || last.status || "")}${last.finished_at ? ` · ${when(last.finished_at)}` : ""}` : "–"}</td></tr>
    </tbody></table>
    ${[...new Set(warnings)].map((w) => `<div class="notice">${esc(w)}</div>`).join("")}`;
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
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table>`;
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
  box.innerHTML = `<h2>The mail of document <code>${esc(documentId)}</code></h2>${body}
    <div class="actions"><a class="button secondary" href="#/documents">All documents</a></div>`;
  box.scrollIntoView();
}

async function runConnectionTest(id) {
  const box = document.getElementById("test-result");
  box.innerHTML = `<div class="card"><p class="muted">Testing the mail connection…</p></div>`;
  const res = await api("POST", `/api/v2/importers/email/${encodeURIComponent(id)}/test`);
  if (!res.ok) { box.innerHTML = `<div class="card"><h2>Mail connection test</h2>${unavailable(res, "The mail connection test")}</div>`; return; }
  const items = res.data.checks.map((c) => `<li><span class="badge ${c.ok ? "ok" : "bad"}">${c.ok ? "ok" : "failed"}</span>
      <strong>${esc(c.name)}</strong> — ${esc(c.detail)}${c.fix ? `<br><span class="small">Fix: ${esc(c.fix)}</span>` : ""}</li>`).join("");
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

async function scriptsPage() {
  const res = await api("GET", "/api/v2/scripts");
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Scripts</h1>${unavailable(res, "The script list")}</div>`; return; }
  view.innerHTML = `<div class="card"><h1>Scripts</h1><p class="muted">Scripts can be run at any time; jobs run them on a schedule.</p>
    <table><thead><tr><th>Script</th><th>Description</th><th></th></tr></thead><tbody>
    ${res.data.map((s) => `<tr><td><code>${esc(s.name)}</code></td><td>${esc(s.description)}</td>
      <td><button type="button" data-run="${esc(s.name)}">Run now</button></td></tr>`).join("")}</tbody></table>
    <div id="run-result"></div></div>`;
  view.querySelectorAll("[data-run]").forEach((b) => b.addEventListener("click", async () => {
    const r = await api("POST", `/api/v2/scripts/${encodeURIComponent(b.dataset.run)}/run`, {});
    const out = document.getElementById("run-result");
    if (!r.ok) { out.innerHTML = `<div class="notice bad">${esc(problemText(r.data))}</div>`; return; }
    location.hash = `#/executions/${r.data.id}`;
  }));
}

async function jobsPage() {
  const res = await api("GET", "/api/v2/jobs");
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Jobs</h1>${unavailable(res, "The job list")}</div>`; return; }
  view.innerHTML = `<div class="card"><h1>Jobs</h1>
    <table><thead><tr><th>Script</th><th>Cron</th><th>Time zone</th><th>Enabled</th><th>Runs</th><th></th></tr></thead><tbody>
    ${res.data.map((j) => `<tr data-job="${esc(j.id)}">
      <td><code>${esc(j.script)}</code></td>
      <td><input data-k="cron" value="${esc(j.cron)}" size="14"><div class="small muted" data-desc></div><div class="field-error" data-err="cron"></div></td>
      <td><input data-k="timezone" value="${esc(j.timezone)}" size="16"><div class="field-error" data-err="timezone"></div></td>
      <td><input type="checkbox" data-k="enabled" ${j.enabled ? "checked" : ""}></td>
      <td class="small" data-next></td>
      <td><button type="button" data-save>Save</button></td></tr>`).join("")}</tbody></table></div>`;
  for (const row of view.querySelectorAll("[data-job]")) {
    const job = res.data.find((j) => j.id === row.dataset.job);
    const showNext = async () => {
      const n = await api("GET", `/api/v2/jobs/${encodeURIComponent(job.id)}/next-runs?count=3`);
      if (n.ok) {
        row.querySelector("[data-desc]").textContent = n.data.description;
        row.querySelector("[data-next]").innerHTML = n.data.runs.map((r) => esc(r.local)).join("<br>");
      }
    };
    showNext();
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
  }
}

async function executionsPage(id) {
  if (id) {
    const res = await api("GET", `/api/v2/executions/${encodeURIComponent(id)}`);
    if (!res.ok) { view.innerHTML = `<div class="card">${unavailable(res, "This execution")}</div>`; return; }
    const e = res.data;
    const log = Array.isArray(e.log) ? e.log.join("\n") : e.log;
    view.innerHTML = `<div class="card"><h1>Execution of <code>${esc(e.script)}</code></h1>
      <p>Status: <span class="badge ${e.status === "succeeded" ? "ok" : e.status === "failed" ? "bad" : "warn"}" id="exec-status">${esc(e.status)}</span> · trigger ${esc(e.trigger)}</p>
      <p>Started ${when(e.started_at)} · finished ${when(e.finished_at)}</p>
      <pre class="log">${esc(log || "")}</pre><a class="button secondary" href="#/executions">All executions</a></div>`;
    if (e.status === "running") setTimeout(() => { if (location.hash === `#/executions/${id}`) executionsPage(id); }, 1000);
    return;
  }
  const res = await api("GET", "/api/v2/executions");
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Executions</h1>${unavailable(res, "The execution list")}</div>`; return; }
  view.innerHTML = `<div class="card"><h1>Executions</h1><table><thead><tr><th>Script</th><th>Trigger</th><th>Status</th><th>Started</th></tr></thead><tbody>
    ${res.data.map((e) => `<tr><td><a href="#/executions/${esc(e.id)}">${esc(e.script)}</a></td><td>${esc(e.trigger)}</td><td>${esc(e.status)}</td><td>${when(e.started_at)}</td></tr>`).join("")}
    </tbody></table></div>`;
}

// A document's file for download; PDFs and images also open in a tab.
function fileLink(d, file, label, type) {
  const url = `/api/v2/documents/${encodeURIComponent(d.document_id)}/files/${file.split("/").map(encodeURIComponent).join("/")}`;
  const shown = /^(application\/pdf|image\/(png|jpeg|gif|webp))$/.test(type || "");
  return `<a href="${esc(url)}" download data-file="${esc(file)}">${esc(label)}</a>${shown ? ` <a href="${esc(url)}?inline=true" target="_blank" rel="noopener" title="open in a new tab">↗</a>` : ""}`;
}

async function documentsPage() {
  const res = await api("GET", "/api/v2/documents");
  if (!res.ok) { view.innerHTML = `<div class="card"><h1>Documents</h1>${unavailable(res, "The document list")}</div>`; return; }
  const mailLink = (d) => `#/importers/${encodeURIComponent(d.importer_id)}/mails?${new URLSearchParams({ document_id: d.document_id })}`;
  view.innerHTML = `<div class="card"><h1>Documents</h1>${res.data.length ? `<table><thead><tr><th>Subject</th><th>From</th><th>Imported</th><th>Attachments</th><th></th></tr></thead><tbody>
    ${res.data.map((d) => `<tr data-document="${esc(d.document_id)}"><td>${esc(d.subject)}</td><td>${esc(d.from)}</td><td>${when(d.imported_at)}</td><td>${d.sink !== "webhook" ? (d.attachments || []).map((a) => fileLink(d, a.file, a.filename || a.file.replace(/^attachments\//, ""), a.content_type)).join(", ") : esc((d.attachments || []).map((a) => a.filename || a.file).join(", "))}</td>
      <td><a href="${esc(mailLink(d))}" data-mail-link title="the mail this document was made from">Mail</a>${d.sink !== "webhook" ? ` · ${fileLink(d, "message.eml", ".eml", "message/rfc822")}` : ""}</td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">No document yet.</p>`}</div>`;
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

// Routes: #/importers[/{id}[/mails[?document_id=…]]], #/scripts, #/jobs,
// #/executions[/{id}], #/documents, #/audit, #/alerts.
async function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  try {
    switch (parts[0]) {
      case "importers":
        if (!parts[1]) return importersPage();
        return importerPage(parts[1], { mails: parts[2] === "mails", documentId: params.get("document_id") ?? undefined });
      case "scripts": return scriptsPage();
      case "jobs": return jobsPage();
      case "executions": return executionsPage(parts[1]);
      case "documents": return documentsPage();
      case "audit": return auditPage();
      case "alerts": return alertsPage();
      default: location.hash = "#/importers";
    }
  } catch (e) {
    view.innerHTML = `<div class="notice bad">${esc(e.message)}</div>`;
  }
}

async function start() {
  const res = await fetch("/ui/session", { credentials: "same-origin" });
  if (!res.ok) { location.href = "/ui/login"; return; }
  session = await res.json();
  document.getElementById("who").textContent = `${session.email} · client ${session.client}`;
  window.addEventListener("hashchange", route);
  route();
}

start();
