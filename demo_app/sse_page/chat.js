// Reads the demo's streams in the browser and times every arrival with performance.now().
// The results go to window.marks (read by a test or a notebook); window.done turns true
// when every stream has ended. URLs are relative, so the page also works behind a proxy
// that serves it under a prefix (jupyter-server-proxy's /proxy/<port>/).
"use strict";

const pageParams = new URLSearchParams(location.search);
const OWN_PARAMS = ["mode", "via", "fetch_accept"];
window.marks = {};
window.done = false;

function streamUrl(path, extra) {
  const query = new URLSearchParams(pageParams);
  OWN_PARAMS.forEach((name) => query.delete(name));
  Object.entries(extra).forEach(([name, value]) => query.set(name, value));
  return path + "?" + query.toString();
}

function log(line) {
  document.getElementById("log").textContent +=
    performance.now().toFixed(1).padStart(9) + " ms  " + line + "\n";
}

function pane(title) {
  const section = document.createElement("section");
  const heading = document.createElement("h2");
  heading.textContent = title;
  const out = document.createElement("pre");
  const timing = document.createElement("p");
  timing.className = "timing";
  section.append(heading, out, timing);
  document.getElementById("panes").append(section);
  return { out, timing };
}

function recorder(name) {
  const marks = { start: performance.now(), open: null, first: null, firstPainted: null,
                  arrivals: [], end: null, text: "", errors: [] };
  window.marks[name] = marks;
  return marks;
}

// One arrival: the text is added to the page; its time and the characters so far are noted.
// The first one is also timed once the browser has painted it (the next animation frame).
function arrived(marks, view, text) {
  const now = performance.now();
  marks.text += text;
  marks.arrivals.push([now, marks.text.length]);
  view.out.append(document.createTextNode(text));
  if (marks.first === null) {
    marks.first = now;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      marks.firstPainted = performance.now();
    }));
  }
}

function finished(marks, view) {
  marks.end = performance.now();
  view.timing.textContent = "first token after " + (marks.first - marks.start).toFixed(0) +
    " ms, end after " + (marks.end - marks.start).toFixed(0) + " ms";
}

// EventSource: one server-sent event per token; the "done" event ends it. Left alone,
// EventSource would reconnect when the server closes the stream, so it is closed here.
function viaEventSource() {
  return new Promise((resolve) => {
    const view = pane("EventSource");
    const marks = recorder("eventsource");
    const source = new EventSource(streamUrl("tokens", { format: "sse" }));
    source.onopen = () => { if (marks.open === null) marks.open = performance.now(); };
    source.onmessage = (event) => arrived(marks, view, event.data);
    source.addEventListener("done", () => {
      source.close();
      finished(marks, view);
      log("EventSource: done");
      resolve();
    });
    source.onerror = () => {
      marks.errors.push(performance.now());
      log("EventSource: error, readyState " + source.readyState);
      if (source.readyState === EventSource.CLOSED) { finished(marks, view); resolve(); }
    };
  });
}

// fetch(): the plain-text answer, read piece by piece as the network delivers it.
// TextDecoderStream decodes UTF-8 across pieces (a character may arrive in two).
async function viaFetch() {
  const view = pane("fetch() + ReadableStream");
  const marks = recorder("fetch");
  const accept = pageParams.get("fetch_accept");
  try {
    const response = await fetch(streamUrl("tokens", { format: "text" }),
                                 { headers: accept ? { Accept: accept } : {} });
    marks.open = performance.now();
    marks.status = response.status;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arrived(marks, view, value);
    }
  } catch (error) {
    marks.errors.push(performance.now());
    log("fetch: " + error);
  }
  finished(marks, view);
  log("fetch: done");
}

// Reconnection: the events stream, logged by id. The server may close the connection
// after a few events (close_after); EventSource then waits `retry` ms, reconnects with
// Last-Event-ID, and the server goes on after that id.
function viaEvents() {
  return new Promise((resolve) => {
    const marks = { start: performance.now(), opens: [], ids: [], errors: [], end: null };
    window.marks.events = marks;
    const source = new EventSource(streamUrl("events", {}));
    source.onopen = () => { marks.opens.push(performance.now()); log("open"); };
    source.addEventListener("tick", (event) => {
      marks.ids.push(event.lastEventId);
      log("id " + event.lastEventId + ": " + event.data.split("\n")[0]);
    });
    source.addEventListener("end", () => {
      source.close();
      marks.end = performance.now();
      log("end");
      resolve();
    });
    source.onerror = () => {
      marks.errors.push(performance.now());
      log("error (readyState " + source.readyState + "): the browser will reconnect");
      if (source.readyState === EventSource.CLOSED) { marks.end = performance.now(); resolve(); }
    };
  });
}

async function main() {
  if (pageParams.get("mode") === "events") {
    await viaEvents();
  } else {
    const clients = { eventsource: viaEventSource, fetch: viaFetch };
    for (const name of (pageParams.get("via") || "eventsource,fetch").split(",")) {
      if (clients[name]) await clients[name]();
    }
  }
  window.done = true;
}

main();
