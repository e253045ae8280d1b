// The admin console: every section talks to the JSON API and shows every value with textContent.
// Forms are checked on the server; a 422's `fields` detail is shown beside each field, and what
// was typed stays in the form until a save succeeds.

import { ApiError, api, clear, copyText, el, openStream, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const root = $("console");

// --- forms: errors beside the field -----------------------------------------------------------

function messagesOf(value) {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(messagesOf);
  if (value && typeof value === "object") return Object.values(value).flatMap(messagesOf);
  return [];
}

function resetErrors(form) {
  for (const node of form.querySelectorAll(".field-error, .form-error")) {
    node.textContent = "";
    node.hidden = true;
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function fieldError(form, name) {
  return [...form.querySelectorAll(".field-error")].find((node) => node.dataset.field === name);
}

function showErrors(form, error) {
  resetErrors(form);
  const general = form.querySelector(".form-error");
  const fields = error instanceof ApiError && error.status === 422 ? error.body.fields : null;
  let first = null;
  let unplaced = [];
  if (fields && typeof fields === "object") {
    for (const [name, problems] of Object.entries(fields)) {
      const text = messagesOf(problems).join(" ");
      const slot = fieldError(form, name);
      if (!slot) {
        unplaced.push(`${name}: ${text}`);
        continue;
      }
      slot.textContent = text;
      slot.hidden = false;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector("fieldset");
      if (input) {
        input.setAttribute("aria-invalid", "true");
        if (!slot.id) slot.id = `${form.id}-${name}-error`;
        const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (!described.includes(slot.id)) input.setAttribute("aria-describedby", [...described, slot.id].join(" "));
        first = first || input;
      }
    }
  } else {
    unplaced = [error.message || String(error)];
  }
  if (unplaced.length && general) {
    general.textContent = unplaced.join("; ");
    general.hidden = false;
  }
  if (first) first.focus();
}

// Run an action from a button: busy while it runs, errors beside the fields of `form`.
async function busy(button, form, action) {
  button.disabled = true;
  try {
    if (form) resetErrors(form);
    return await action();
  } catch (error) {
    if (form) showErrors(form, error);
    else toast(error.message || String(error), "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

function submitter(form, event) {
  return event.submitter || form.querySelector('button[type="submit"]');
}

function copyButton(value, label) {
  const button = el("button", { class: "btn copy", text: "Copy", attrs: { type: "button", "aria-label": `Copy ${label}` } });
  button.addEventListener("click", async () => {
    const ok = await copyText(value);
    toast(ok ? `${label} copied` : `Could not copy ${label}: select it and copy by hand`, ok ? "info" : "warn");
  });
  return button;
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

// --- the shown-once box (member tokens, sign-in links) ----------------------------------------

function showOnce(label, value) {
  $("once-label").textContent = label;
  $("once-value").value = value;
  $("once").hidden = false;
  $("once-value").focus();
  $("once-value").select();
}

function dismissOnce() {
  $("once-value").value = "";
  $("once-label").textContent = "";
  $("once").hidden = true;
}

$("once-copy").addEventListener("click", async () => {
  const ok = await copyText($("once-value").value);
  toast(ok ? "Copied" : "Could not copy: select it and copy by hand", ok ? "info" : "warn");
});
$("once-dismiss").addEventListener("click", dismissOnce);

// --- 1. connection ------------------------------------------------------------------------------

const connectionForm = $("connection-form");
let connection = null;

function connectionInput(spec, state) {
  const id = `conn-${spec.name}`;
  const wrap = el("div", { class: "field" });
  const marks = spec.required ? "" : " (optional)";
  const label = el("label", { text: `${spec.label}${marks}`, attrs: { for: id } });
  if (spec.secret) {
    const isSet = state.secrets[spec.name] === "set";
    label.append(" ", el("span", { class: `set-state ${isSet ? "is-set" : ""}`, text: isSet ? "set" : "not set" }));
  }
  wrap.append(label);
  let input;
  if (spec.kind === "choice") {
    input = el("select", { attrs: { id, name: spec.name } });
    if (!spec.required) input.append(el("option", { text: "(default)", attrs: { value: "" } }));
    for (const choice of spec.choices) input.append(el("option", { text: choice, attrs: { value: choice } }));
    input.value = state.settings[spec.name] || "";
  } else {
    const type = spec.secret ? "password" : spec.kind === "email" ? "email" : spec.kind === "url" ? "url" : "text";
    input = el("input", { attrs: { id, name: spec.name, type, autocomplete: spec.secret ? "new-password" : "off", spellcheck: "false" } });
    if (spec.secret) {
      input.placeholder = state.secrets[spec.name] === "set" ? "stored: leave empty to keep" : "";
    } else {
      input.value = state.settings[spec.name] || "";
    }
  }
  const help = spec.help ? el("p", { class: "hint", text: spec.help, attrs: { id: `${id}-help` } }) : null;
  if (help) input.setAttribute("aria-describedby", help.id);
  wrap.append(input);
  if (help) wrap.append(help);
  wrap.append(el("p", { class: "field-error", attrs: { "data-field": spec.name, hidden: "" } }));
  return wrap;
}

function renderConnection(state) {
  connection = state;
  $("vendor-name").textContent = state.vendor;
  const box = $("connection-fields");
  // Keep what was typed when re-rendering after a failed save is not needed: we only re-render
  // after a successful load or save.
  clear(box);
  for (const spec of state.fields) box.append(connectionInput(spec, state));
}

async function loadConnection() {
  renderConnection(await api("/api/v1/tenant/connection"));
}

connectionForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const values = {};
  for (const spec of connection.fields) {
    const value = connectionForm.elements[spec.name].value.trim();
    if (value) values[spec.name] = value; // blank secrets keep the stored ones
  }
  busy(submitter(connectionForm, event), connectionForm, async () => {
    renderConnection(await api("/api/v1/tenant/connection", { method: "PUT", body: values }));
    toast("Connection saved. Test it next.");
    clear($("test-result"));
    loadStatuses();
    loadWebhook();
    loadPeople();
  });
});

function renderChecks(result) {
  const box = $("test-result");
  clear(box);
  box.append(el("p", { class: result.ok ? "result-ok" : "result-error", text: result.ok ? "The connection works." : "The connection does not work yet:" }));
  const list = el("ul", { class: "check-list" });
  for (const check of result.checks) {
    list.append(
      el("li", { class: check.ok ? "check-ok" : "check-bad" }, [
        el("span", { class: "check-mark", text: check.ok ? "✓" : "✗", attrs: { "aria-hidden": "true" } }),
        el("strong", { text: check.what }),
        el("span", { class: "visually-hidden", text: check.ok ? " works: " : " failed: " }),
        el("span", { text: ` ${check.detail}` }),
      ]),
    );
  }
  box.append(list);
}

$("test-connection").addEventListener("click", (event) => {
  const box = $("test-result");
  clear(box);
  box.append(el("p", { class: "busy", text: "Calling your PSA…" }));
  busy(event.currentTarget, null, async () => {
    try {
      renderChecks(await api("/api/v1/tenant/connection/test", { method: "POST" }));
    } catch (error) {
      clear(box);
      box.append(el("p", { class: "result-error", text: error.message }));
    }
  });
});

// --- 2. escalation trigger ----------------------------------------------------------------------

const triggerForm = $("trigger-form");

function statusState(text, kind = "muted") {
  const fieldset = $("statuses");
  for (const node of [...fieldset.children]) if (node.tagName !== "LEGEND") node.remove();
  fieldset.append(el("p", { class: kind, text, attrs: { id: "statuses-state" } }));
}

function renderStatuses(data) {
  const fieldset = $("statuses");
  for (const node of [...fieldset.children]) if (node.tagName !== "LEGEND") node.remove();
  if (!data.statuses.length) {
    statusState("Your PSA lists no active ticket statuses.");
    return;
  }
  // Statuses may belong to groups (boards): name the groups once when every status is on all.
  const boards = (status) => status.groups.join(", ");
  const shared = data.statuses.every((s) => boards(s) === boards(data.statuses[0]));
  if (shared && data.statuses[0].groups.length) {
    fieldset.append(el("p", { class: "hint", text: `On every board: ${boards(data.statuses[0])}.` }));
  }
  const grid = el("div", { class: "status-grid" });
  data.statuses.forEach((status, index) => {
    const id = `status-${index}`;
    const box = el("input", { attrs: { type: "checkbox", id, name: "escalation_statuses", value: status.value } });
    box.checked = status.selected;
    const label = el("label", { class: "status-option", attrs: { for: id } }, [box, el("span", { class: "status-name", text: status.name })]);
    if (!shared && status.groups.length) label.append(el("span", { class: "status-boards", text: boards(status) }));
    grid.append(label);
  });
  fieldset.append(grid);
  if (data.unknown_selected.length) {
    fieldset.append(
      el("p", {
        class: "warn-note",
        text: `Configured but not in your PSA's list: ${data.unknown_selected.join(", ")}. Saving drops it.`,
      }),
    );
  }
}

async function loadStatuses() {
  if (!connection || !connection.configured) {
    statusState("Save a working connection first; the statuses are read from the PSA.");
    return;
  }
  statusState("Reading the statuses from your PSA…", "busy");
  try {
    renderStatuses(await api("/api/v1/tenant/statuses"));
  } catch (error) {
    statusState(`Could not read the statuses: ${error.message}`, "result-error");
  }
}

$("reload-statuses").addEventListener("click", () => loadStatuses());

triggerForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const chosen = [...triggerForm.querySelectorAll('input[name="escalation_statuses"]:checked')].map((b) => b.value);
  busy(submitter(triggerForm, event), triggerForm, async () => {
    const saved = await api("/api/v1/tenant/trigger", { method: "PUT", body: { escalation_statuses: chosen } });
    toast(`Escalation trigger saved: ${saved.names.join(", ")}`);
    await loadStatuses();
  });
});

// --- 3. install ---------------------------------------------------------------------------------

function renderSteps(list, steps) {
  clear(list);
  for (const step of steps) {
    const item = el("li", {}, [el("p", { text: step.text })]);
    if (step.values.length) {
      const table = el("dl", { class: "paste" });
      for (const value of step.values) {
        table.append(
          el("dt", { text: value.label }),
          el("dd", {}, [el("code", { text: value.value }), copyButton(value.value, value.label)]),
        );
      }
      item.append(table);
    }
    list.append(item);
  }
}

function renderWebhook(hook) {
  let state = hook.webhook_steps.length ? "not installed through the PSA's API: set it up by hand below" : "not installed";
  if (hook.installed && hook.active) state = `installed and active (PSA id ${hook.id})`;
  else if (hook.installed) state = `installed but switched off in the PSA: install again to turn it back on`;
  $("webhook-state").textContent = state;
  $("webhook-state").className = hook.installed && hook.active ? "result-ok" : "result-error";
  $("callback-url").textContent = hook.callback_url;
  renderSteps($("webhook-steps"), hook.webhook_steps);
  $("webhook-steps-title").hidden = !hook.webhook_steps.length;
  $("webhook-note").textContent = hook.webhook_note;
  renderSteps($("panel-steps"), hook.panel_steps);
  $("panel-note").textContent = hook.panel_note;
}

function installedWords(hook) {
  if (!hook.installed) return "Finish the webhook in the PSA with the values shown";
  return hook.created ? "Webhook installed" : "Webhook found and checked: it is installed and active";
}

async function loadWebhook() {
  renderWebhook(await api("/api/v1/tenant/webhook"));
}

$("install-webhook").addEventListener("click", (event) => {
  const error = $("install-error");
  error.hidden = true;
  busy(event.currentTarget, null, async () => {
    try {
      const hook = await api("/api/v1/tenant/webhook/install", { method: "POST" });
      renderWebhook(hook);
      toast(installedWords(hook));
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
});

// --- 4. members ---------------------------------------------------------------------------------

const memberForm = $("member-form");
const ROLES = ["technician", "engineer", "admin"];
const PSA = root ? root.dataset.psaName : "";
const PSA_STATES = { active: "active", deactivated: "deactivated", missing: "not in its list" };

// What the PSA says of a member, as Baton last read its people.
function psaState(member) {
  const state = member.psa_state || "unread";
  const text = PSA_STATES[member.psa_state] || "not read yet";
  return el("td", {}, [el("span", { class: `psa-state psa-${state}`, text })]);
}

function memberRow(member) {
  const row = el("tr", { attrs: { "data-member-id": member.id } });
  const name = el("td", { text: member.name });
  if (member.you) name.append(el("span", { class: "muted", text: " (you)" }));
  const role = el("select", { attrs: { "aria-label": `Role of ${member.name}` } });
  for (const r of ROLES) role.append(el("option", { text: r, attrs: { value: r } }));
  role.value = member.role;
  role.addEventListener("change", async () => {
    try {
      const saved = await api(`/api/v1/tenant/members/${member.id}`, { method: "PATCH", body: { role: role.value } });
      member.role = saved.role;
      markPerson(member.psa_member_id, saved);
      toast(`${member.name} is now ${saved.role}`);
    } catch (error) {
      role.value = member.role;
      toast(error.message, "error", 10);
    }
  });

  const link = el("button", { class: "btn", text: "Sign-in link", attrs: { type: "button", "aria-label": `Make a sign-in link for ${member.name}` } });
  link.disabled = member.psa_state === "deactivated"; // Baton would refuse it
  link.addEventListener("click", () =>
    busy(link, null, async () => {
      const made = await api(`/api/v1/members/${member.id}/sign-in-link`, { method: "POST", body: {} });
      showOnce(`Sign-in link for ${member.name}: works once, until ${when(made.expires_at)}. Send it to them.`, made.url);
    }),
  );
  const revoke = el("button", { class: "btn", text: "Withdraw links", attrs: { type: "button", "aria-label": `Withdraw ${member.name}'s unused sign-in links` } });
  revoke.addEventListener("click", () =>
    busy(revoke, null, async () => {
      const done = await api(`/api/v1/members/${member.id}/sign-in-link`, { method: "DELETE" });
      toast(done.revoked ? `Withdrew ${done.revoked} unused link${done.revoked === 1 ? "" : "s"} of ${member.name}` : `${member.name} has no unused links`);
    }),
  );
  const remove = el("button", { class: "btn", text: "Remove", attrs: { type: "button", "aria-label": `Remove ${member.name}` } });
  let armed = false;
  const disarm = () => {
    armed = false;
    remove.textContent = "Remove";
    remove.classList.remove("btn-confirm");
  };
  remove.addEventListener("blur", disarm);
  remove.addEventListener("keydown", (event) => event.key === "Escape" && disarm());
  remove.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      remove.textContent = "Confirm remove";
      remove.classList.add("btn-confirm");
      return;
    }
    busy(remove, null, async () => {
      await api(`/api/v1/tenant/members/${member.id}`, { method: "DELETE" });
      markPerson(member.psa_member_id, null);
      toast(`${member.name} removed`);
      loadMembers();
    }).finally(disarm);
  });
  row.append(
    name,
    el("td", { text: member.psa_member_id }),
    el("td", { text: member.email }),
    el("td", {}, [role]),
    psaState(member),
    el("td", { class: "row-buttons" }, [link, revoke, remove]),
  );
  return row;
}

async function loadMembers() {
  const members = await api("/api/v1/tenant/members");
  const body = $("member-table").querySelector("tbody");
  clear(body);
  for (const member of members) body.append(memberRow(member));
}

// --- 4. members: people from the PSA, ticked and given a role each, added in one request ---------

const importForm = $("import-form");
const chosen = new Map(); // PSA member id -> role, kept across re-reads and filtering
let people = [];

function importState(text, kind = "muted") {
  $("import-state").textContent = text;
  $("import-state").className = kind;
}

function addable(person) {
  return person.member_id === null && person.active;
}

function importRows() {
  return [...$("import-table").querySelectorAll("tbody tr")];
}

function countChosen() {
  $("import-count").textContent = chosen.size ? `${chosen.size} chosen` : "";
  const open = importRows().filter((row) => !row.hidden && row.dataset.addable === "yes");
  const all = $("import-all");
  all.checked = open.length > 0 && open.every((row) => chosen.has(row.dataset.psaMemberId));
  all.disabled = open.length === 0;
}

function personRow(person) {
  const id = person.psa_member_id;
  const search = `${person.name} ${person.email} ${id}`.toLowerCase();
  const row = el("tr", { attrs: { "data-psa-member-id": id, "data-addable": addable(person) ? "yes" : "no", "data-search": search } });
  const pick = el("input", { attrs: { type: "checkbox", "aria-label": `Add ${person.name}` } });
  const name = el("td", { text: person.name });
  let role;
  if (person.member_id !== null) {
    role = el("span", { class: "muted", text: `already a member: ${person.role}` });
  } else if (!person.active) {
    role = el("span", { class: "psa-state psa-deactivated", text: `deactivated in ${PSA}` });
  } else {
    role = el("select", { attrs: { "aria-label": `Role in Baton for ${person.name}` } });
    for (const r of ROLES) role.append(el("option", { text: r, attrs: { value: r } }));
    role.value = chosen.get(id) || "technician";
    role.addEventListener("change", () => {
      chosen.set(id, role.value); // choosing a role chooses the person
      pick.checked = true;
      countChosen();
    });
  }
  pick.disabled = !addable(person);
  pick.checked = addable(person) && chosen.has(id);
  pick.addEventListener("change", () => {
    if (pick.checked) chosen.set(id, role.value);
    else chosen.delete(id);
    countChosen();
  });
  row.append(
    el("td", {}, [pick]),
    name,
    el("td", { text: id }),
    el("td", { text: person.email || `none in ${PSA}`, class: person.email ? "" : "muted" }),
    el("td", {}, [role]),
  );
  return row;
}

function filterPeople() {
  const wanted = $("import-filter").value.trim().toLowerCase();
  for (const row of importRows()) row.hidden = Boolean(wanted) && !row.dataset.search.includes(wanted);
  countChosen();
}

function renderPeople() {
  const body = $("import-table").querySelector("tbody");
  clear(body);
  for (const id of [...chosen.keys()]) {
    if (!people.some((person) => person.psa_member_id === id && addable(person))) chosen.delete(id);
  }
  for (const person of people) body.append(personRow(person));
  const open = people.filter(addable).length;
  const who = $("import-inactive").checked ? "people" : "active people";
  importState(`${PSA} lists ${people.length} ${who}; ${open} can be added.`);
  $("import-wrap").hidden = people.length === 0;
  filterPeople();
}

async function loadPeople() {
  if (!connection || !connection.configured) {
    importState(`Save a working connection first; the people are read from ${PSA}.`);
    $("import-wrap").hidden = true;
    return;
  }
  importState(`Reading the people in ${PSA}…`, "busy");
  const inactive = $("import-inactive").checked;
  try {
    people = await api(`/api/v1/tenant/psa-members${inactive ? "?include_inactive=true" : ""}`);
  } catch (error) {
    importState(`Could not read the people in ${PSA}: ${error.message}`, "result-error");
    $("import-wrap").hidden = true;
    return;
  }
  renderPeople();
  await loadMembers(); // reading the PSA brought each member's state in it up to date
}

// Keep the PSA list's marks in step with a member changed here, without reading the PSA again.
function markPerson(psaMemberId, member) {
  const person = people.find((p) => p.psa_member_id.toLowerCase() === psaMemberId.toLowerCase());
  if (!person) return;
  person.member_id = member ? member.id : null;
  person.role = member ? member.role : null;
  renderPeople();
}

// A refused import names each pick that cannot be added; the list read again shows why.
function refusal(error) {
  const refused = error instanceof ApiError && error.status === 422 && error.body.fields && error.body.fields.members;
  return refused ? new Error(`Nobody was added: ${messagesOf(refused).join("; ")}. The list is read again from ${PSA}.`) : error;
}

$("import-filter").addEventListener("input", filterPeople);
$("import-inactive").addEventListener("change", () => loadPeople());
$("reload-psa-members").addEventListener("click", (event) => busy(event.currentTarget, null, loadPeople));
$("import-all").addEventListener("change", (event) => {
  for (const row of importRows()) {
    if (row.hidden || row.dataset.addable !== "yes") continue;
    const id = row.dataset.psaMemberId;
    if (event.currentTarget.checked) chosen.set(id, row.querySelector("select").value);
    else chosen.delete(id);
    row.querySelector("input").checked = event.currentTarget.checked;
  }
  countChosen();
});

importForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const picks = [...chosen].map(([psa_member_id, role]) => ({ psa_member_id, role }));
  busy(submitter(importForm, event), importForm, async () => {
    if (!picks.length) throw new Error("Tick the people to add first.");
    let made;
    try {
      made = await api("/api/v1/tenant/members/import", { method: "POST", body: { members: picks } });
    } catch (error) {
      await loadPeople();
      throw refusal(error);
    }
    chosen.clear();
    toast(`Added ${made.length} ${made.length === 1 ? "member" : "members"} from ${PSA}`);
    await loadPeople();
  });
});

memberForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(memberForm).entries());
  busy(submitter(memberForm, event), memberForm, async () => {
    const made = await api("/api/v1/tenant/members", { method: "POST", body: data });
    memberForm.reset();
    markPerson(made.psa_member_id, made);
    await loadMembers();
    showOnce(`API token for ${made.name} (for scripts and the API; for the panel, make them a sign-in link):`, made.token);
    toast(`${made.name} added as ${made.role}`);
  });
});

// --- 6. never-send terms and patterns ------------------------------------------------------------

const redactionForm = $("redaction-form");
const tryForm = $("redaction-try-form");

function redactionRow(entry) {
  const what = entry.label || (entry.kind === "term" ? `term of ${entry.length} characters` : "pattern");
  const remove = el("button", { class: "btn", text: "Remove", attrs: { type: "button", "aria-label": `Remove ${what}` } });
  remove.addEventListener("click", () =>
    busy(remove, null, async () => {
      await api(`/api/v1/tenant/redaction-patterns/${entry.id}`, { method: "DELETE" });
      toast(`Removed ${what}`);
      await loadRedaction();
    }),
  );
  const shown = entry.kind === "pattern" ? el("code", { text: entry.pattern }) : el("span", { class: "muted", text: `hidden (${entry.length} characters)` });
  return el("tr", { attrs: { "data-pattern-id": entry.id } }, [
    el("td", { text: entry.kind }),
    el("td", { text: entry.label }),
    el("td", {}, [shown]),
    el("td", { class: "row-buttons" }, [remove]),
  ]);
}

async function loadRedaction() {
  const entries = await api("/api/v1/tenant/redaction-patterns");
  const body = $("redaction-table").querySelector("tbody");
  clear(body);
  for (const entry of entries) body.append(redactionRow(entry));
  $("redaction-empty").hidden = entries.length > 0;
}

redactionForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(redactionForm).entries());
  busy(submitter(redactionForm, event), redactionForm, async () => {
    const made = await api("/api/v1/tenant/redaction-patterns", { method: "POST", body: data });
    redactionForm.reset();
    await loadRedaction();
    toast(`Added a ${made.kind}: it applies to every ticket from now on`);
  });
});

tryForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("redaction-sample").value;
  busy(submitter(tryForm, event), tryForm, async () => {
    const tried = await api("/api/v1/tenant/redaction-patterns/try", { method: "POST", body: { text } });
    const result = $("redaction-result");
    result.textContent = tried.summary ? `${tried.text}\n\n(${tried.summary} removed)` : `${tried.text}\n\n(nothing removed)`;
    result.hidden = false;
  });
});

// --- 5. settings --------------------------------------------------------------------------------

const languageForm = $("language-form");
const notifyForm = $("notify-form");
const pilotForm = $("pilot-form");
const baselineForm = $("baseline-form");
let notifications = null;

async function loadSettings() {
  const settings = await api("/api/v1/tenant/settings");
  const select = $("language");
  clear(select);
  for (const [code, name] of Object.entries(settings.languages)) select.append(el("option", { text: name, attrs: { value: code } }));
  select.value = settings.language;
  $("pilot-start").value = settings.pilot_started_on || "";
  $("pilot-threshold").value = settings.verdict_threshold_hours ?? "";
}

languageForm.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(submitter(languageForm, event), languageForm, async () => {
    const saved = await api("/api/v1/tenant/settings", { method: "PUT", body: { language: $("language").value } });
    toast(`Handoffs are written in ${saved.languages[saved.language] || saved.language}`);
  });
});

function renderNotifications(state) {
  notifications = state;
  $("email-enabled").checked = state.email_enabled;
  $("smtp-state").hidden = state.smtp_configured;
  for (const channel of ["teams", "slack"]) {
    const isSet = state[`${channel}_url`] === "set";
    const mark = $(`${channel}-state`);
    mark.textContent = isSet ? "set" : "not set";
    mark.className = `set-state ${isSet ? "is-set" : ""}`;
    $(`${channel}-url`).placeholder = isSet ? "stored: leave empty to keep" : "https://…";
  }
}

async function loadNotifications() {
  renderNotifications(await api("/api/v1/tenant/notifications"));
}

function notifyChanges() {
  const body = {};
  if (!notifications || $("email-enabled").checked !== notifications.email_enabled) body.email_enabled = $("email-enabled").checked;
  for (const channel of ["teams", "slack"]) {
    const typed = $(`${channel}-url`).value.trim();
    if ($(`clear-${channel}`).checked) body[`${channel}_url`] = "";
    else if (typed) body[`${channel}_url`] = typed;
  }
  return body;
}

async function saveNotifications() {
  const body = notifyChanges();
  if (!Object.keys(body).length) return false;
  renderNotifications(await api("/api/v1/tenant/notifications", { method: "PUT", body }));
  for (const channel of ["teams", "slack"]) {
    $(`${channel}-url`).value = ""; // write-only: stored now, never shown again
    $(`clear-${channel}`).checked = false;
  }
  return true;
}

notifyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(submitter(notifyForm, event), notifyForm, async () => {
    toast((await saveNotifications()) ? "Notifications saved" : "Nothing changed");
  });
});

$("send-test").addEventListener("click", (event) => {
  const list = $("test-messages");
  busy(event.currentTarget, notifyForm, async () => {
    await saveNotifications(); // what was typed is what gets tested
    clear(list);
    list.append(el("li", { class: "busy", text: "Sending…" }));
    const answer = await api("/api/v1/tenant/notifications/test", { method: "POST" });
    clear(list);
    for (const result of answer.results) {
      const kind = result.status === "sent" ? "check-ok" : result.status === "failed" ? "check-bad" : "check-skip";
      const mark = result.status === "sent" ? "✓" : result.status === "failed" ? "✗" : "–";
      list.append(
        el("li", { class: kind, attrs: { "data-channel": result.channel } }, [
          el("span", { class: "check-mark", text: mark, attrs: { "aria-hidden": "true" } }),
          el("span", { text: ` ${result.message}` }),
        ]),
      );
    }
  });
});

pilotForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = { pilot_started_on: $("pilot-start").value || null };
  const threshold = $("pilot-threshold").value.trim();
  if (threshold) body.verdict_threshold_hours = threshold;
  busy(submitter(pilotForm, event), pilotForm, async () => {
    const saved = await api("/api/v1/tenant/pilot", { method: "PUT", body });
    $("pilot-start").value = saved.pilot_started_on || "";
    $("pilot-threshold").value = saved.verdict_threshold_hours;
    toast("Pilot saved");
  });
});

async function loadBaseline() {
  const samples = await api("/api/v1/analytics/baseline");
  const body = $("baseline-table").querySelector("tbody");
  clear(body);
  $("baseline-empty").hidden = samples.length > 0;
  for (const sample of samples) {
    const remove = el("button", { class: "btn btn-ghost", text: "Delete", attrs: { type: "button", "aria-label": `Delete the ${sample.minutes}-minute entry` } });
    remove.addEventListener("click", () =>
      busy(remove, null, async () => {
        await api(`/api/v1/analytics/baseline/${sample.id}`, { method: "DELETE" });
        toast("Baseline entry deleted");
        loadBaseline();
      }),
    );
    body.append(
      el("tr", {}, [
        el("td", { text: sample.minutes }),
        el("td", { text: sample.ticket }),
        el("td", { text: sample.note }),
        el("td", { text: sample.recorded_by || "" }),
        el("td", {}, [remove]),
      ]),
    );
  }
}

baselineForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = {
    minutes: $("baseline-minutes").value.trim(),
    ticket: $("baseline-ticket").value.trim(),
    note: $("baseline-note").value.trim(),
  };
  busy(submitter(baselineForm, event), baselineForm, async () => {
    await api("/api/v1/analytics/baseline", { method: "POST", body });
    baselineForm.reset();
    await loadBaseline();
    $("baseline-minutes").focus();
    toast("Baseline entry added");
  });
});

// --- 6. audit -----------------------------------------------------------------------------------

const WHY = {
  accepted: "Recorded as an escalation.",
  duplicate: "The PSA sent the same delivery again: still one escalation.",
  ignored: "Not an escalation.",
  refused: "Refused.",
  failed: "Failed.",
};

async function loadAudit() {
  const rows = await api("/api/v1/tenant/deliveries?limit=50");
  const body = $("audit-table").querySelector("tbody");
  clear(body);
  $("audit-empty").hidden = rows.length > 0;
  for (const row of rows) {
    const escalation = row.escalation_id
      ? el("a", { text: `#${row.escalation_id}`, attrs: { href: `/panel/escalations/${row.escalation_id}` } })
      : el("span", { class: "muted", text: "none" });
    body.append(
      el("tr", { attrs: { "data-outcome": row.outcome } }, [
        el("td", { text: when(row.received_at) }),
        el("td", {}, [el("span", { class: `outcome outcome-${row.outcome}`, text: row.outcome })]),
        el("td", { text: row.reason || WHY[row.outcome] || "" }),
        el("td", {}, [escalation]),
      ]),
    );
  }
}

$("refresh-audit").addEventListener("click", (event) => busy(event.currentTarget, null, loadAudit));

// --- start --------------------------------------------------------------------------------------

async function start() {
  const loads = [
    loadConnection().then(() => Promise.all([loadStatuses(), loadPeople()])),
    loadWebhook(),
    loadMembers(),
    loadSettings(),
    loadNotifications(),
    loadBaseline(),
    loadRedaction(),
    loadAudit(),
  ];
  const results = await Promise.allSettled(loads);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length) toast(`Some sections did not load: ${failed[0].reason.message}`, "error", 12);
  // A new escalation means a delivery was accepted: show it in the audit without a reload. The
  // audit row is written just after the escalation is published, so read a moment later.
  let pending = null;
  openStream({
    onEvent: () => {
      clearTimeout(pending);
      pending = setTimeout(() => loadAudit().catch(() => {}), 800);
    },
  });
}

if (root) start();
