import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DATASET_NAMES, METHODS } from '@ddae/contracts';
import { pageClientScript } from './page-bundle';

/**
 * The web page: one self-contained HTML file (inline CSS, the API client bundled as one inline script,
 * the page's own vanilla JS; nothing fetched but the API).
 */
export interface WebPage {
  html: string;
  /** A Content-Security-Policy that allows exactly the page's own inline script and style. */
  csp: string;
}

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Reads `index.html` next to this module, inlines the API client and fills in the data sets and methods of the contracts. */
export async function loadWebPage(file = path.join(__dirname, 'index.html')): Promise<WebPage> {
  const template = readFileSync(file, 'utf8');
  const client = await pageClientScript();
  // JSON inside <script>: escape '<' so no value can close the element.
  const config = JSON.stringify({ datasets: DATASET_NAMES, methods: METHODS }).replace(/</g, '\\u003c');
  const html = template.replace('__DDAE_CONFIG__', () => config).replace('__DDAE_API_CLIENT__', () => client);
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => hash(m[1]));
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => hash(m[1]));
  const csp = [
    "default-src 'none'",
    "connect-src 'self'",
    `script-src ${scripts.join(' ')}`,
    `style-src ${styles.join(' ')}`,
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}
