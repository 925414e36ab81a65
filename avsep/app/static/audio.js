"use strict";
// Separated sound in step with a muted <video>. The server sends 16-bit PCM WAV chunks; each is
// turned into an AudioBuffer by hand (no decodeAudioData: it is asynchronous and resamples, and
// the bytes are already plain samples) and scheduled back to back on the AudioContext clock.
// The first chunk is short, so that the first sound comes quickly; the next ones are fetched
// while the previous ones play.

const FIRST_SECONDS = 2.0;   // a short first chunk: fewer windows to separate, fewer bytes
const NEXT_SECONDS = 8.0;
const LEAD_SECONDS = 4.0;    // fetch the next chunk when this much scheduled audio is left

/** Samples of a mono 16-bit PCM WAV as floats; throws on anything else. */
function wavSamples(bytes) {
  const view = new DataView(bytes);
  if (bytes.byteLength < 12 || view.getUint32(0, false) !== 0x52494646) throw new Error("not a WAV answer");
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = view.getUint32(offset, false), size = view.getUint32(offset + 4, true);
    if (id === 0x64617461) {  // "data"
      const count = Math.min(size, bytes.byteLength - offset - 8) >> 1;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 8 + 2 * i, true) / 32768;
      return out;
    }
    offset += 8 + size + (size & 1);
  }
  throw new Error("WAV answer without data");
}

class StemPlayer {
  /** video: the <video> element whose clock the sound follows; rate, total: of the analysed audio. */
  constructor(video) {
    this.video = video;
    this.ctx = null;
    this.generation = 0;      // bumped by stop(): answers to older requests are dropped
    this.sources = [];
    this.timer = null;
    this.metrics = [];        // one entry per click: how long until the first sound
    this.onError = () => {};
    this.onFirstAudio = () => {};
    this.received = [];       // {first, last, rate, url} of every chunk, for tests and the benchmark
  }

  /** Create or wake the AudioContext; call it from a click (browsers need a gesture). */
  wake() {
    if (!this.ctx) this.ctx = new AudioContext({ latencyHint: "interactive" });
    if (this.ctx.state === "suspended") this.ctx.resume();
  }

  stop() {
    this.generation++;
    clearTimeout(this.timer);
    for (const source of this.sources) { try { source.stop(); } catch (e) { /* already ended */ } }
    this.sources = [];
  }

  get active() { return this.sources.length > 0; }

  /**
   * Play `query` (video, region, mode) from the video's current time, in step with it.
   * clickedAt: performance.now() of the click (or other `cause`), to measure the time to the first sound.
   */
  async play(query, rate, total, clickedAt, cause = "click") {
    this.stop();
    const generation = this.generation;
    const first = Math.min(total, Math.round(this.video.currentTime * rate));
    let chunk;
    try {
      chunk = await this.fetchChunk(query, first, Math.round(FIRST_SECONDS * rate), generation);
    } catch (err) {
      if (generation === this.generation) this.onError(err);
      return;
    }
    if (!chunk || generation !== this.generation) return;
    // Where the video is now, not where it was at the click: the sound catches up with the picture.
    const offset = Math.max(0, this.video.currentTime - chunk.first / rate);
    this.origin = this.ctx.currentTime - chunk.first / rate - offset;   // AudioContext time of video time 0
    this.schedule(chunk, rate);
    const started = performance.now();
    const entry = { cause, clickToAudioMs: started - clickedAt, requestMs: chunk.requestMs, serverMs: chunk.serverMs,
                    query: query.toString() };
    this.metrics.push(entry);
    this.onFirstAudio(entry);
    this.continueFrom(query, chunk.last, rate, total, generation);
  }

  continueFrom(query, first, rate, total, generation) {
    if (first >= total || generation !== this.generation) return;
    const left = this.origin + first / rate - this.ctx.currentTime;
    this.timer = setTimeout(async () => {
      try {
        const chunk = await this.fetchChunk(query, first, Math.round(NEXT_SECONDS * rate), generation);
        if (!chunk || generation !== this.generation) return;
        this.schedule(chunk, rate);
        this.continueFrom(query, chunk.last, rate, total, generation);
      } catch (err) {
        if (generation === this.generation) this.onError(err);
      }
    }, Math.max(0, (left - LEAD_SECONDS) * 1000));
  }

  async fetchChunk(query, first, count, generation) {
    const params = new URLSearchParams(query);
    params.set("first", first);
    params.set("count", count);
    const began = performance.now();
    const response = await fetch("/api/audio?" + params);
    if (generation !== this.generation) return null;
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      throw new Error(answer.error || `the server answered ${response.status}`);
    }
    const bytes = await response.arrayBuffer();
    if (generation !== this.generation) return null;
    const samples = wavSamples(bytes);
    const rate = Number(response.headers.get("X-Avsep-Rate"));
    const timing = /dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
    const chunk = { first: Number(response.headers.get("X-Avsep-First")), last: Number(response.headers.get("X-Avsep-Last")),
                    samples, rate, requestMs: performance.now() - began, serverMs: timing ? Number(timing[1]) : null };
    this.received.push({ first: chunk.first, last: chunk.last, rate, query: params.toString() });
    return chunk;
  }

  schedule(chunk, rate) {
    if (!chunk.samples.length) return;
    const buffer = this.ctx.createBuffer(1, chunk.samples.length, rate);
    buffer.copyToChannel(chunk.samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const when = this.origin + chunk.first / rate, now = this.ctx.currentTime;
    if (when >= now) {
      source.start(when);
    } else if (now - when < buffer.duration) {
      source.start(0, now - when);   // late (a slow answer): skip what is past, stay in step
    } else {
      return;
    }
    source.onended = () => { this.sources = this.sources.filter((s) => s !== source); };
    this.sources.push(source);
  }
}

window.StemPlayer = StemPlayer;
