// The live stream (GET /v1/stats/stream): stats, progress and heartbeat events. EventSource
// reconnects by itself after a network error; when the browser gives up (readyState CLOSED),
// a new one is opened after a delay. Emits "stats", "progress", "state" and "reconnect"
// (the stream is back after a loss: pages refetch their data).

export class Live extends EventTarget {
  constructor(url = "/v1/stats/stream") {
    super();
    this.url = url;
    this.state = "connecting";
    this.stats = null;
    this.lost = false;
    this.es = null;
    this.retry = null;
  }

  start() {
    if (this.es) this.es.close();
    const es = new EventSource(this.url);
    this.es = es;
    es.addEventListener("open", () => {
      this.setState("live");
      if (this.lost) {
        this.lost = false;
        this.emit("reconnect", null);
      }
    });
    es.addEventListener("stats", (e) => {
      const s = parse(e.data);
      if (!s) return;
      this.stats = s;
      this.emit("stats", s);
    });
    es.addEventListener("progress", (e) => {
      const p = parse(e.data);
      if (p) this.emit("progress", p);
    });
    es.addEventListener("heartbeat", (e) => this.emit("heartbeat", parse(e.data)));
    es.addEventListener("error", () => {
      this.lost = true;
      this.setState("reconnecting");
      if (es.readyState === EventSource.CLOSED && !this.retry) {
        this.retry = setTimeout(() => {
          this.retry = null;
          this.start();
        }, 2000);
      }
    });
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit("state", s);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
