import {
  MAX_STORED_RESPONSE_HEADERS,
  MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH,
} from '../constants.js';

/**
 * Bounded capture of what a receiver answered (go-hookd §3.10). A receiver is a stranger: its
 * body is read only up to the stored limit and then abandoned, and everything kept is valid text
 * that PostgreSQL's TEXT and JSONB columns accept (no invalid UTF-8, no NUL).
 */

const TRUNCATION_MARK = '...';
// PostgreSQL rejects U+0000 in TEXT and JSONB; U+FFFD keeps the position visible.
const NUL = new RegExp(String.fromCharCode(0), 'g');

/** Decodes at most `limit` bytes as UTF-8 without splitting a character; invalid bytes become U+FFFD. */
export function decodeCapped(
  bytes: Uint8Array,
  limit: number,
): { text: string; truncated: boolean } {
  const truncated = bytes.byteLength > limit;
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  // `stream: true` holds back an incomplete trailing sequence instead of emitting U+FFFD for it,
  // which is exactly "cut without splitting a character".
  const text = truncated
    ? decoder.decode(bytes.subarray(0, limit), { stream: true })
    : decoder.decode(bytes);
  return { text: text.replace(NUL, '\uFFFD') + (truncated ? TRUNCATION_MARK : ''), truncated };
}

/** What was read of a response body. */
export interface CapturedBody {
  readonly text: string;
  readonly truncated: boolean;
  /** Why reading stopped early, if it failed (the part read so far is still in `text`). */
  readonly error: unknown;
}

/**
 * Reads a body stream until `limit + 1` bytes are known (enough to tell that it is longer), then
 * stops reading and destroys the stream, so a huge or endless body costs at most `limit` bytes
 * of memory.
 */
export async function readCappedBody(
  body: AsyncIterable<Uint8Array> & { destroy(error?: Error): unknown },
  limit: number,
): Promise<CapturedBody> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let error: unknown = null;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size > limit) break;
    }
  } catch (caught) {
    error = caught;
  } finally {
    // Breaking out of the loop already destroys the stream; this covers the error path too.
    body.destroy();
  }
  const bytes = Buffer.concat(chunks, size);
  const decoded = decodeCapped(bytes, limit);
  return { text: decoded.text, truncated: decoded.truncated, error };
}

/**
 * Keeps at most 32 response headers (names sorted), the first value of each, each value cut to
 * 512 bytes plus `...`.
 */
export function captureHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const names = Object.keys(headers).sort().slice(0, MAX_STORED_RESPONSE_HEADERS);
  const captured: Record<string, string> = {};
  for (const name of names) {
    const raw = headers[name];
    const first = Array.isArray(raw) ? raw[0] : raw;
    if (first === undefined) continue;
    captured[name.replace(NUL, '\uFFFD')] = decodeCapped(
      Buffer.from(first, 'latin1'),
      MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH,
    ).text;
  }
  return captured;
}
