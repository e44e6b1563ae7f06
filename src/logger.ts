/**
 * The logger node-hookd writes to: the call shape of pino (`logger.warn(obj, msg)` or
 * `logger.warn(msg)`), so a pino logger, a child of one, or {@link consoleLogger} can be passed
 * directly. node-hookd is silent unless a logger is given.
 */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/** A pino-compatible logger. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const ignore: LogFn = () => undefined;

/** A logger that drops everything: the default. */
export const silentLogger: Logger = Object.freeze({
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
});

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** Severity names in increasing order. */
export type LogLevel = (typeof LEVELS)[number];

/**
 * A logger writing one line per entry to the console (stderr for warn and error), for examples
 * and quick starts. Use pino in production.
 */
export function consoleLogger(minimumLevel: LogLevel = 'info'): Logger {
  const threshold = LEVELS.indexOf(minimumLevel);
  const make = (level: LogLevel): LogFn => {
    if (LEVELS.indexOf(level) < threshold) return ignore;
    // The one place node-hookd may print: a logger the application asked for explicitly.
    // eslint-disable-next-line no-console
    const write = level === 'warn' || level === 'error' ? console.error : console.log;
    return (fieldsOrMessage: object | string, message?: string) => {
      const text = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
      const fields = typeof fieldsOrMessage === 'string' ? undefined : fieldsOrMessage;
      const suffix = fields && Object.keys(fields).length > 0 ? ` ${safeJson(fields)}` : '';
      write(`[hookd] ${level.toUpperCase()} ${text}${suffix}`);
    };
  };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

function safeJson(value: object): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) =>
      v instanceof Error ? { name: v.name, message: v.message } : v,
    );
  } catch {
    return '[unserialisable fields]';
  }
}
