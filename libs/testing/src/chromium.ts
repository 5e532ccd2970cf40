import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/**
 * Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
 * messages, each ended by a NUL byte, on file descriptors 3 and 4): no WebSocket client and no
 * npm package, only the browser Debian ships (`apt-get install chromium`, which
 * scripts/ensure-services.sh does).
 */

/** Where the browser is: $CHROME_PATH, else Debian's binary, else the usual names. */
export function findChromium(): string {
  const candidates = [process.env['CHROME_PATH'], '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error('headless Chromium not found: install it with `bash scripts/ensure-services.sh` (Debian package chromium), or set CHROME_PATH');
  return found;
}

export interface Viewport {
  width: number;
  height: number;
  /** Emulate a phone (touch, mobile viewport meta). Default false. */
  mobile?: boolean;
}

interface Pending {
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
  method: string;
}

type Listener = (params: Record<string, unknown>, sessionId?: string) => void;

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private buffer = Buffer.alloc(0);
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const out = child.stdio[4] as Readable;
    out.on('data', (chunk: Buffer) => this.receive(chunk));
    child.stderr?.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + c.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`Chromium exited (code ${code}, signal ${signal}) during ${p.method}: ${this.stderr.slice(-800)}`));
      this.pending.clear();
    });
  }

  /** Starts a headless browser with a throw-away profile. */
  static async launch(): Promise<Chromium> {
    const profile = mkdtempSync(path.join(tmpdir(), 'ddae-chromium-'));
    const child = spawn(
      findChromium(),
      [
        '--headless=new',
        '--remote-debugging-pipe',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--hide-scrollbars',
        '--mute-audio',
        `--user-data-dir=${profile}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    const browser = new Chromium(child, profile);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve());
    });
    await browser.send('Browser.getVersion');
    return browser;
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (let end = this.buffer.indexOf(0); end >= 0; end = this.buffer.indexOf(0)) {
      const text = this.buffer.subarray(0, end).toString('utf8');
      this.buffer = this.buffer.subarray(end + 1);
      const message = JSON.parse(text) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (message.id !== undefined) {
        const p = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) p?.reject(new Error(`${p.method}: ${message.error.message}`));
        else p?.resolve(message.result ?? {});
      } else if (message.method) {
        for (const listener of this.listeners.get(message.method) ?? []) listener(message.params ?? {}, message.sessionId);
      }
    }
  }

  /** One DevTools command (on a page when `sessionId` is given). */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const input = this.child.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** Resolves with the params of the next `method` event of `sessionId` for which `match` holds. */
  once(method: string, sessionId: string, match: (params: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const set = this.listeners.get(method) ?? new Set<Listener>();
      this.listeners.set(method, set);
      const listener: Listener = (params, from) => {
        if (from !== sessionId || !match(params)) return;
        set.delete(listener);
        resolve(params);
      };
      set.add(listener);
    });
  }

  /** Subscribes to `method` events of `sessionId`; returns the unsubscribe function. */
  on(method: string, sessionId: string, fn: (params: Record<string, unknown>) => void): () => void {
    const set = this.listeners.get(method) ?? new Set<Listener>();
    this.listeners.set(method, set);
    const listener: Listener = (params, from) => {
      if (from === sessionId) fn(params);
    };
    set.add(listener);
    return () => set.delete(listener);
  }

  /** A new tab of `viewport` size. */
  async newPage(viewport: Viewport): Promise<BrowserPage> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new BrowserPage(this, targetId, sessionId);
    await Promise.all([this.send('Page.enable', {}, sessionId), this.send('Runtime.enable', {}, sessionId), this.send('Log.enable', {}, sessionId)]);
    await page.setViewport(viewport);
    return page;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      await this.send('Browser.close').catch(() => this.child.kill('SIGKILL'));
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/** One tab: navigate, evaluate, click, screenshot; console errors and failed requests are collected. */
export class BrowserPage {
  /** Uncaught exceptions, console errors and failed or refused requests (CSP included) since the page opened. */
  readonly problems: string[] = [];
  private viewport: Viewport = { width: 800, height: 600 };

  constructor(
    private readonly browser: Chromium,
    readonly targetId: string,
    readonly sessionId: string,
  ) {
    browser.on('Runtime.exceptionThrown', sessionId, (p) => this.problems.push(`exception: ${JSON.stringify((p['exceptionDetails'] as { exception?: { description?: string }; text?: string })?.exception?.description ?? p['exceptionDetails'])}`));
    browser.on('Runtime.consoleAPICalled', sessionId, (p) => {
      if (p['type'] === 'error') this.problems.push(`console.error: ${JSON.stringify(p['args'])}`);
    });
    browser.on('Log.entryAdded', sessionId, (p) => {
      const entry = p['entry'] as { level: string; text: string; url?: string };
      if (entry.level === 'error') this.problems.push(`${entry.text}${entry.url ? ` (${entry.url})` : ''}`);
    });
  }

  async setViewport(viewport: Viewport): Promise<void> {
    this.viewport = viewport;
    const mobile = viewport.mobile === true;
    await this.browser.send('Emulation.setDeviceMetricsOverride', { width: viewport.width, height: viewport.height, deviceScaleFactor: 1, mobile }, this.sessionId);
    await this.browser.send('Emulation.setTouchEmulationEnabled', mobile ? { enabled: true, maxTouchPoints: 5 } : { enabled: false }, this.sessionId);
  }

  /** Navigates and waits for the load event. */
  async goto(url: string, timeoutMs = 30_000): Promise<void> {
    const loaded = this.browser.once('Page.loadEventFired', this.sessionId);
    const result = await this.browser.send('Page.navigate', { url }, this.sessionId);
    if (result['errorText']) throw new Error(`cannot load ${url}: ${String(result['errorText'])}`);
    await withTimeout(loaded, timeoutMs, `the load event of ${url}`);
  }

  /** Evaluates a JavaScript expression in the page (promises awaited) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.browser.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, userGesture: true }, this.sessionId)) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text} (evaluating ${expression.slice(0, 200)})`);
    return r.result.value as T;
  }

  /** Polls `expression` until it is truthy; returns its value. */
  async waitFor<T>(what: string, expression: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${expression}); page problems: ${this.problems.join('; ') || 'none'}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * From now on, the answers whose URL matches `urlPattern` (DevTools' wildcards: `*` any characters,
   * `?` one) reach the page with the body `rewrite` makes of the real one: a test serves the page an
   * answer the real API would never send, without touching the API. Call it before `goto`.
   */
  async rewriteResponses(urlPattern: string, rewrite: (body: string, url: string) => string): Promise<void> {
    this.browser.on('Fetch.requestPaused', this.sessionId, (p) => {
      void this.fulfil(p as unknown as PausedResponse, rewrite).catch((error: unknown) => this.problems.push(`rewriteResponses(${urlPattern}): ${(error as Error).message}`));
    });
    await this.browser.send('Fetch.enable', { patterns: [{ urlPattern, requestStage: 'Response' }] }, this.sessionId);
  }

  /**
   * From now on, the requests whose URL matches one of `urlPatterns` (DevTools' wildcards) never
   * reach the API: each fails as `how` says, with no network at all (`'network'`: the page's fetch
   * rejects) or with an HTTP status and body of its own. Call it before `goto`; a page uses either
   * this or rewriteResponses (both pause requests through the same DevTools domain).
   */
  async failRequests(urlPatterns: string[], how: 'network' | { status: number; body: string }): Promise<void> {
    this.browser.on('Fetch.requestPaused', this.sessionId, (p) => {
      const requestId = (p as unknown as PausedResponse).requestId;
      const sent =
        how === 'network'
          ? this.browser.send('Fetch.failRequest', { requestId, errorReason: 'ConnectionRefused' }, this.sessionId)
          : this.browser.send(
              'Fetch.fulfillRequest',
              { requestId, responseCode: how.status, responseHeaders: [{ name: 'content-type', value: 'application/json; charset=utf-8' }], body: Buffer.from(how.body, 'utf8').toString('base64') },
              this.sessionId,
            );
      void sent.catch((error: unknown) => this.problems.push(`failRequests(${urlPatterns.join(', ')}): ${(error as Error).message}`));
    });
    await this.browser.send('Fetch.enable', { patterns: urlPatterns.map((urlPattern) => ({ urlPattern, requestStage: 'Request' })) }, this.sessionId);
  }

  private async fulfil(paused: PausedResponse, rewrite: (body: string, url: string) => string): Promise<void> {
    const { body, base64Encoded } = (await this.browser.send('Fetch.getResponseBody', { requestId: paused.requestId }, this.sessionId)) as { body: string; base64Encoded: boolean };
    const text = base64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
    const rewritten = rewrite(text, paused.request.url);
    // The new body has its own length and is not compressed.
    const headers = (paused.responseHeaders ?? []).filter((h) => !/^(content-length|content-encoding|etag)$/i.test(h.name));
    await this.browser.send(
      'Fetch.fulfillRequest',
      { requestId: paused.requestId, responseCode: paused.responseStatusCode ?? 200, responseHeaders: headers, body: Buffer.from(rewritten, 'utf8').toString('base64') },
      this.sessionId,
    );
  }

  /** A real mouse click (or tap, on a mobile viewport) at the centre of the first element matching `selector`. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number } | null>(`(() => {
      const n = document.querySelector(${JSON.stringify(selector)});
      if (!n) return null;
      n.scrollIntoView({ block: 'center', inline: 'center' });
      const r = n.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (!box) throw new Error(`no element matches ${selector}`);
    if (this.viewport.mobile) {
      for (const type of ['touchStart', 'touchEnd'] as const) {
        await this.browser.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x: box.x, y: box.y }] }, this.sessionId);
      }
      return;
    }
    for (const type of ['mousePressed', 'mouseReleased'] as const) {
      await this.browser.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 }, this.sessionId);
    }
  }

  /** A PNG of the whole page (not only the viewport) at the current width. */
  async screenshot(): Promise<Buffer> {
    const metrics = (await this.browser.send('Page.getLayoutMetrics', {}, this.sessionId)) as { cssContentSize: { width: number; height: number } };
    const height = Math.ceil(metrics.cssContentSize.height);
    const { data } = (await this.browser.send(
      'Page.captureScreenshot',
      { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width: this.viewport.width, height, scale: 1 } },
      this.sessionId,
    )) as { data: string };
    return Buffer.from(data, 'base64');
  }

  async close(): Promise<void> {
    await this.browser.send('Target.closeTarget', { targetId: this.targetId });
  }
}

/** `Fetch.requestPaused` at the response stage. */
interface PausedResponse {
  requestId: string;
  request: { url: string };
  responseStatusCode?: number;
  responseHeaders?: { name: string; value: string }[];
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
