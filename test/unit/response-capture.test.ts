import { describe, expect, it } from 'vitest';

import {
  MAX_RESPONSE_BODY_LENGTH,
  MAX_STORED_RESPONSE_HEADERS,
  MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH,
} from '../../src/constants.js';
import {
  captureHeaders,
  decodeCapped,
  readCappedBody,
} from '../../src/delivery/response-capture.js';

const LIMIT = MAX_RESPONSE_BODY_LENGTH;
const utf8 = (text: string) => new TextEncoder().encode(text);

describe('decodeCapped', () => {
  it('keeps a body of exactly the limit whole', () => {
    const text = 'a'.repeat(LIMIT);
    expect(decodeCapped(utf8(text), LIMIT)).toEqual({ text, truncated: false });
  });

  it('cuts a longer body at the limit and appends "..."', () => {
    const result = decodeCapped(utf8('b'.repeat(LIMIT + 1)), LIMIT);
    expect(result.truncated).toBe(true);
    expect(result.text).toBe(`${'b'.repeat(LIMIT)}...`);
  });

  it('never splits a multi-byte character at the cut', () => {
    // 'a' then 3-byte '€' characters: the cut at 10240 bytes falls inside a character.
    const text = `a${'€'.repeat(4000)}`;
    const result = decodeCapped(utf8(text), LIMIT);
    expect(result.truncated).toBe(true);
    expect(result.text.endsWith('€...')).toBe(true);
    expect(result.text).not.toContain('\uFFFD');
    const kept = result.text.slice(0, -3);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(LIMIT);
    expect(Buffer.byteLength(kept)).toBe(1 + 3 * Math.floor((LIMIT - 1) / 3));
    // Four-byte characters (surrogate pairs in JavaScript).
    const emoji = decodeCapped(utf8(`ab${'😀'.repeat(3000)}`), LIMIT);
    expect(emoji.text).not.toContain('\uFFFD');
    expect(emoji.text.endsWith('😀...')).toBe(true);
  });

  it('replaces invalid UTF-8 with U+FFFD', () => {
    const bytes = Uint8Array.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0xe2, 0x82, 0x63]);
    const { text } = decodeCapped(bytes, LIMIT);
    expect(text.startsWith('a\uFFFDb\uFFFD(')).toBe(true);
    expect(text.endsWith('c')).toBe(true);
    expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
  });

  it('replaces NUL with U+FFFD, which PostgreSQL text cannot store', () => {
    expect(decodeCapped(Uint8Array.from([0x61, 0x00, 0x62, 0x00]), LIMIT).text).toBe(
      'a\uFFFDb\uFFFD',
    );
  });

  it('keeps a byte-order mark and decodes an empty body as empty', () => {
    expect(decodeCapped(Uint8Array.from([0xef, 0xbb, 0xbf, 0x41]), LIMIT).text).toBe('\uFEFFA');
    expect(decodeCapped(new Uint8Array(0), LIMIT)).toEqual({ text: '', truncated: false });
  });
});

/** A body stream that would produce `totalChunks` chunks, counting how many were pulled. */
function countingBody(chunkSize: number, totalChunks: number) {
  const chunk = new Uint8Array(chunkSize).fill(0x7a);
  const state = { pulled: 0, destroyed: false, finished: false };
  async function* generate() {
    try {
      for (let i = 0; i < totalChunks; i++) {
        state.pulled += 1;
        yield chunk;
      }
    } finally {
      state.finished = true;
    }
  }
  const iterator = generate();
  const body = {
    [Symbol.asyncIterator]: () => iterator,
    destroy() {
      state.destroyed = true;
    },
  };
  return { body, state };
}

describe('readCappedBody', () => {
  it('stops pulling a huge body right after the limit is passed', async () => {
    // 64 KiB chunks, 65,536 of them: 4 GiB if it were read to the end.
    const { body, state } = countingBody(65_536, 65_536);
    const captured = await readCappedBody(body, LIMIT);
    expect(state.pulled).toBe(1);
    expect(state.destroyed).toBe(true);
    expect(state.finished).toBe(true);
    expect(captured).toEqual({ text: `${'z'.repeat(LIMIT)}...`, truncated: true, error: null });
  });

  it('pulls small chunks only until it knows the body is too long', async () => {
    const { body, state } = countingBody(1000, 1_000_000);
    const captured = await readCappedBody(body, LIMIT);
    expect(state.pulled).toBe(11);
    expect(captured.truncated).toBe(true);
    expect(captured.text).toHaveLength(LIMIT + 3);
  });

  it('reads a short body completely', async () => {
    const { body, state } = countingBody(100, 3);
    const captured = await readCappedBody(body, LIMIT);
    expect(state.pulled).toBe(3);
    expect(state.destroyed).toBe(true);
    expect(captured).toEqual({ text: 'z'.repeat(300), truncated: false, error: null });
  });

  it('keeps what was read when the stream fails half-way, and reports the error', async () => {
    const failure = new Error('socket hang up');
    async function* broken() {
      yield utf8('partial ');
      yield utf8('body');
      throw failure;
    }
    let destroyed = false;
    const iterator = broken();
    const captured = await readCappedBody(
      {
        [Symbol.asyncIterator]: () => iterator,
        destroy() {
          destroyed = true;
        },
      },
      LIMIT,
    );
    expect(captured).toEqual({ text: 'partial body', truncated: false, error: failure });
    expect(destroyed).toBe(true);
  });

  it('does not split a character that straddles two chunks', async () => {
    const bytes = utf8('é');
    async function* chunks() {
      yield Uint8Array.of(0x61, bytes[0]!);
      yield Uint8Array.of(bytes[1]!, 0x62);
    }
    const iterator = chunks();
    const captured = await readCappedBody(
      { [Symbol.asyncIterator]: () => iterator, destroy: () => undefined },
      LIMIT,
    );
    expect(captured.text).toBe('aéb');
  });
});

describe('captureHeaders', () => {
  it('keeps names sorted and the first value of repeated headers', () => {
    expect(
      captureHeaders({
        'x-b': '2',
        'set-cookie': ['first=1', 'second=2'],
        'content-type': 'text/plain',
        'x-a': '1',
        'x-missing': undefined,
      }),
    ).toEqual({ 'content-type': 'text/plain', 'set-cookie': 'first=1', 'x-a': '1', 'x-b': '2' });
    expect(Object.keys(captureHeaders({ b: '1', a: '2', c: '3' }))).toEqual(['a', 'b', 'c']);
  });

  it('keeps only the first 32 names in sorted order', () => {
    const headers = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`x-h${String(i).padStart(3, '0')}`, String(i)]),
    );
    const captured = captureHeaders(headers);
    expect(Object.keys(captured)).toHaveLength(MAX_STORED_RESPONSE_HEADERS);
    expect(Object.keys(captured)[0]).toBe('x-h000');
    expect(Object.keys(captured).at(-1)).toBe('x-h031');
  });

  it('cuts values at 512 bytes plus "..."', () => {
    const exact = 'v'.repeat(MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH);
    expect(captureHeaders({ 'x-exact': exact })['x-exact']).toBe(exact);
    expect(captureHeaders({ 'x-long': 'w'.repeat(5000) })['x-long']).toBe(
      `${'w'.repeat(MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH)}...`,
    );
  });

  it('decodes latin1-transported UTF-8 values and keeps them valid and NUL-free', () => {
    // undici hands header bytes over as latin1 strings; 'é' in UTF-8 arrives as 'Ã©'.
    const wire = Buffer.from('café', 'utf8').toString('latin1');
    expect(captureHeaders({ 'x-name': wire })['x-name']).toBe('café');
    expect(captureHeaders({ 'x-bad': '\u00ff\u0000' })['x-bad']).toBe('\uFFFD\uFFFD');
  });
});
