// Reads one topic's stream with EventSource and shows each event as it arrives. What it saw
// goes to window.marks: the worker that serves this tab (from the stream's hello event), every
// event id in order, and the connections opened. Relative URLs, so it also works under a
// proxy's prefix. The page's query string goes to the stream (topic=..., delivery=...).
"use strict";

const query = new URLSearchParams(location.search);
if (!query.has("topic")) query.set("topic", "orders");
window.marks = { worker: null, workers: [], ids: [], data: [], opens: 0, errors: 0 };
document.getElementById("topic").textContent = query.get("topic");

const source = new EventSource("topics/stream?" + query.toString());
source.onopen = () => { window.marks.opens += 1; };
source.onerror = () => { window.marks.errors += 1; };
source.addEventListener("hello", (event) => {
  const hello = JSON.parse(event.data);
  window.marks.worker = hello.worker;
  window.marks.workers.push(hello.worker);
  document.getElementById("worker").textContent = hello.worker;
});
source.onmessage = (event) => {
  const data = JSON.parse(event.data);
  window.marks.ids.push(Number(event.lastEventId));
  window.marks.data.push(data.data);
  document.getElementById("events").textContent +=
    `#${event.lastEventId}  ${data.data}  (sent by worker ${data.worker})\n`;
};
