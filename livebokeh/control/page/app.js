// livebokeh's control page: plain JavaScript, no build step, nothing from the network.
// Every request goes to this page's own origin with the run's key, from the page's address
// (/#key=..., or /?key=...) and then from this tab's sessionStorage, which is kept apart per origin,
// so per port; the key leaves the address bar at once. No cookie holds it: a browser sends cookies
// to every port of 127.0.0.1.
"use strict";

const KEY = (() => {
  const given = new URLSearchParams(location.hash.slice(1)).get("key")
    || new URLSearchParams(location.search).get("key");
  if (given) {
    sessionStorage.setItem("livebokeh-key", given);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("livebokeh-key") || "";
})();
const AUTH = {"Authorization": "Bearer " + KEY};

const $ = (id) => document.getElementById(id);
let settings = {};
let live = {};
let lastChanges = -1;
let changing = 0;  // changes sent and not answered
let changeCount = 0;  // changes sent so far: a reading asked for before the last one is stale

async function api(path, body) {
  const init = body === undefined ? {headers: AUTH} : {
    method: "POST", headers: {...AUTH, "Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

function say(text, bad) {
  const m = $("message");
  m.textContent = text;
  m.className = bad ? "bad" : "";
}

async function change(changes) {
  changing += 1;
  changeCount += 1;
  try {
    const done = await api("/api/settings", {changes});
    changing -= 1;
    const keys = Object.keys(done.applied);
    say(keys.length ? "changed: " + keys.map((k) => `${k} = ${done.applied[k]}`).join(", ") : "no change");
    await loadSettings();
  } catch (err) {
    changing -= 1;
    say(err.message, true);
    await loadSettings();
  }
}

function show(key, fmt) {
  const input = $(key.split(".")[1]);
  const out = $(key.split(".")[1] + "-out");
  if (input) input.value = settings[key];
  if (out) out.textContent = fmt ? fmt(settings[key]) : settings[key];
}

async function loadSettings() {
  const asked = changeCount;
  const data = await api("/api/settings");
  if (changing || asked !== changeCount) return;  // a change came since: its own reading follows it
  settings = data.settings;
  live = data.live;
  for (const radio of document.querySelectorAll("input[name=effect]")) {
    radio.checked = radio.value === settings["render.effect"];
  }
  show("render.blur", (v) => v.toFixed(3));
  show("render.fstop", (v) => (v > 0 ? "f/" + v.toFixed(1) : "off"));
  show("render.light_wrap", (v) => v.toFixed(2));
  show("framing.zoom_max", (v) => v.toFixed(1) + "x");
  $("aperture").value = settings["render.aperture"];
  $("framing").checked = settings["framing.enabled"];
  $("mirror").checked = settings["render.mirror"];
  $("overlay").checked = settings["preview.overlay"];
  $("backend").value = settings["segmenter.backend"];
  $("backend").disabled = !data.can_swap;
  $("backend-note").textContent = data.can_swap
    ? "the new model is loaded while the camera runs, then swapped in"
    : "the backend changes at the next start in this run";
  setPaused(data.paused);
}

function setPaused(mode) {
  $("paused-badge").hidden = !mode;
  $("paused-badge").textContent = mode ? "paused (" + mode + ")" : "";
  $("resume").disabled = !mode;
}

function fmtState(s) {
  const rows = [
    ["fps", s.fps.toFixed(1) + (s.camera_fps ? " of " + s.camera_fps.toFixed(0) : "")],
    ["cores", s.cores.toFixed(2)],
    ["model runs", s.model_rate.toFixed(1) + " a second"],
    ["backend", s.backend + (s.model && s.model !== s.backend ? ` (${s.model} in use)` : "")],
    ["dropped", String(s.dropped)],
    ["framing", s.framing],
  ];
  const c = s.controller;
  if (c) rows.push(["load", c.level > 0 ? `${c.name}: ${c.why}` : c.name]);
  if (s.virtual_camera) {
    const vc = s.virtual_camera;
    rows.push(["virtual camera", vc.device + (vc.readers === null ? "" : `, ${vc.readers} app(s) reading`)]);
    if (vc.on_demand) rows.push(["on demand", vc.on_demand.active ? "camera on" : "idle, camera off"]);
  }
  return rows;
}

async function loadState() {
  try {
    const s = await api("/api/state");
    $("source").textContent = s.source + (s.size ? ` ${s.size[0]}x${s.size[1]}` : "");
    const dl = $("status");
    dl.replaceChildren();
    for (const [k, v] of fmtState(s)) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    setPaused(s.paused);
    if (s.changes !== lastChanges) {  // changed elsewhere (ctl, keys, SIGHUP): show it
      if (lastChanges >= 0) await loadSettings();
      lastChanges = s.changes;
    }
  } catch (err) {
    say("livebokeh is not answering: " + err.message, true);
  }
}

async function loadPicker() {
  const data = await api("/api/backgrounds");
  const picker = $("picker");
  picker.replaceChildren();
  for (const item of data.items) {
    const button = document.createElement("button");
    button.className = "pick" + (item.id === data.current ? " current" : "");
    button.title = item.name;
    button.dataset.id = item.id;
    const img = document.createElement("img");
    img.alt = item.name;
    fetch("/api/thumb?id=" + encodeURIComponent(item.id), {headers: AUTH})
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); });
    button.append(img);
    button.addEventListener("click", () => pick(item.id));
    picker.append(button);
  }
  $("picker-note").textContent = data.items.length
    ? (data.folder ? `from ${data.folder} and your uploads` : "your uploads")
    : "no pictures yet: upload one" + (data.folder ? "" : " (or set [control] backgrounds to a folder of yours)");
}

async function pick(id) {
  try {
    await api("/api/background", {id, apply: true});
    say("background: " + id.split(":").slice(1).join(":"));
    await Promise.all([loadSettings(), loadPicker()]);
  } catch (err) {
    say(err.message, true);
  }
}

async function upload(file) {
  const buffer = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < buffer.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, buffer.subarray(i, i + 0x8000));
  }
  try {
    await api("/api/background", {upload: btoa(binary), name: file.name, apply: true});
    say("background: " + file.name);
    await Promise.all([loadSettings(), loadPicker()]);
  } catch (err) {
    say(err.message, true);
  }
}

async function keepDefaults() {
  try {
    let done;
    try {
      done = await api("/api/defaults", {overwrite: false});
    } catch (err) {
      if (err.status !== 409 || !err.data.exists) throw err;
      if (!window.confirm(`Write ${err.data.keys.join(", ")} into ${err.data.path}? The rest of the file stays.`)) {
        say("nothing written");
        return;
      }
      done = await api("/api/defaults", {overwrite: true});
    }
    const keys = Object.keys(done.written);
    say(keys.length ? `kept in ${done.path}: ${keys.join(", ")}` : `${done.path} already holds these settings`);
  } catch (err) {
    say(err.message, true);
  }
}

// The preview: polled small JPEGs, only while the page is visible (a hidden tab costs nothing).
let previewUrl = null;
let previewBusy = false;
async function refreshPreview() {
  if (document.visibilityState !== "visible" || previewBusy) return;
  previewBusy = true;
  try {
    const response = await fetch("/api/frame.jpg?w=480", {headers: AUTH});
    if (response.ok) {
      const url = URL.createObjectURL(await response.blob());
      $("preview").src = url;
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = url;
    }
  } finally {
    previewBusy = false;
  }
}

function wire() {
  for (const radio of document.querySelectorAll("input[name=effect]")) {
    radio.addEventListener("change", () => change({"render.effect": radio.value}));
  }
  const slide = (id, key, fmt) => {
    $(id).addEventListener("input", () => { $(id + "-out").textContent = fmt(Number($(id).value)); });
    $(id).addEventListener("change", () => change({[key]: Number($(id).value)}));
  };
  slide("blur", "render.blur", (v) => v.toFixed(3));
  slide("fstop", "render.fstop", (v) => (v > 0 ? "f/" + v.toFixed(1) : "off"));
  slide("light_wrap", "render.light_wrap", (v) => v.toFixed(2));
  slide("zoom_max", "framing.zoom_max", (v) => v.toFixed(1) + "x");
  $("aperture").addEventListener("change", () => change({"render.aperture": $("aperture").value}));
  $("framing").addEventListener("change", () => change({"framing.enabled": $("framing").checked}));
  $("mirror").addEventListener("change", () => change({"render.mirror": $("mirror").checked}));
  $("overlay").addEventListener("change", () => change({"preview.overlay": $("overlay").checked}));
  $("backend").addEventListener("change", () => {
    say("loading " + $("backend").value + " ...");
    change({"segmenter.backend": $("backend").value});
  });
  $("use-colour").addEventListener("click",
    () => change({"render.background": $("colour").value, "render.effect": "replace"}));
  $("chroma-green").addEventListener("click",
    () => change({"render.background": "chroma-green", "render.effect": "replace"}));
  $("upload").addEventListener("change", () => { if ($("upload").files[0]) upload($("upload").files[0]); });
  $("pause-still").addEventListener("click", async () => setPaused((await api("/api/pause", {mode: "still"})).state.paused));
  $("pause-blank").addEventListener("click", async () => setPaused((await api("/api/pause", {mode: "blank"})).state.paused));
  $("resume").addEventListener("click", async () => setPaused((await api("/api/resume", {})).state.paused));
  $("keep").addEventListener("click", keepDefaults);
}

wire();
loadSettings().then(loadState).catch((err) => say(err.message, true));
loadPicker().catch((err) => say(err.message, true));
setInterval(loadState, 1000);
setInterval(refreshPreview, 125);
document.addEventListener("visibilitychange", refreshPreview);
