import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseTimestamp } from '../../src/repository/pg-types.js';

// The expression-only parser parseTimestamp used before it read the usual form by hand: the
// reference every input must still agree with.
const TIMESTAMP =
  /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?$/;

function reference(value: string): Date {
  const match = TIMESTAMP.exec(value);
  if (!match) {
    if (value === 'infinity') return new Date(8.64e15);
    if (value === '-infinity') return new Date(-8.64e15);
    return new Date(value);
  }
  const [, year, month, day, hour, minute, second, fraction, sign, offH, offM, offS] = match;
  const millis = fraction ? Number(fraction.padEnd(3, '0').slice(0, 3)) : 0;
  const utc = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
    millis,
  );
  const offsetSeconds =
    sign === undefined
      ? 0
      : (sign === '-' ? -1 : 1) *
        (Number(offH) * 3600 + Number(offM ?? 0) * 60 + Number(offS ?? 0));
  return new Date(utc - offsetSeconds * 1000);
}

const same = (value: string) => {
  const expected = reference(value).getTime();
  const actual = parseTimestamp(value).getTime();
  if (Number.isNaN(expected)) expect(actual).toBeNaN();
  else expect(actual).toBe(expected);
};

describe('parseTimestamp', () => {
  it.each([
    ['2024-05-01 12:34:56.789012+02', Date.UTC(2024, 4, 1, 10, 34, 56, 789)],
    ['2024-05-01 12:34:56+00', Date.UTC(2024, 4, 1, 12, 34, 56)],
    ['2024-05-01 12:34:56.7-05:30', Date.UTC(2024, 4, 1, 18, 4, 56, 700)],
    ['2024-05-01 12:34:56.999999+05:30:15', Date.UTC(2024, 4, 1, 7, 4, 41, 999)],
    ['2024-05-01T12:34:56.05Z', Date.UTC(2024, 4, 1, 12, 34, 56, 50)],
    ['2024-05-01 12:34:56', Date.UTC(2024, 4, 1, 12, 34, 56)],
    ['12024-05-01 12:34:56+00', Date.UTC(12024, 4, 1, 12, 34, 56)],
  ])('reads %s', (value, expected) => {
    expect(parseTimestamp(value).getTime()).toBe(expected);
    same(value);
  });

  it.each([
    'infinity',
    '-infinity',
    '0099-01-01 00:00:00+00',
    '2024-05-01 12:34:56.1234567+00',
    '2024-05-01 12:34:56.+00',
    '2024-05-01 12:34:56+0',
    '2024-05-01 12:34:56+05:',
    '2024-05-01 12:34:56+05:3',
    '2024-05-01 12:34:56+0530',
    '2024-05-01 12:34:56+05:3015',
    '2024-05-01 12:34:56Z1',
    '2024-05-01 12:34:5',
    '2024-05-01 1a:34:56',
    '2024-05-01 12:34:56 BC',
    'not a timestamp',
  ])('reads %s as the expression did', (value) => {
    same(value);
  });

  it('agrees with the expression on generated timestamps', () => {
    const digits = (min: number, max: number) =>
      fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
    const timestamp = fc
      .tuple(
        digits(3, 5),
        digits(1, 3),
        digits(1, 3),
        fc.constantFrom(' ', 'T', 'x'),
        digits(2, 2),
        digits(2, 2),
        digits(1, 3),
        fc.option(digits(0, 8)),
        fc.option(
          fc.tuple(
            fc.constantFrom('+', '-', 'Z', ':'),
            digits(0, 3),
            fc.constantFrom('', ':'),
            digits(0, 3),
            fc.constantFrom('', ':'),
            digits(0, 3),
          ),
        ),
      )
      .map(([year, month, day, separator, hour, minute, second, fraction, offset]) => {
        let text = `${year}-${month}-${day}${separator}${hour}:${minute}:${second}`;
        if (fraction !== null) text += `.${fraction}`;
        if (offset !== null) text += offset.join('');
        return text;
      });
    fc.assert(
      fc.property(timestamp, (value) => {
        same(value);
      }),
      { numRuns: 5_000 },
    );
  });
});
