/**
 * Structured loggers, one per component and per node (as js-libp2p's
 * `logger.forComponent`). Modules accept a `Logger`; they never print.
 * Output is JSON lines so operators and tests can parse it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogData = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, data?: LogData): void;
  info(msg: string, data?: LogData): void;
  warn(msg: string, data?: LogData): void;
  error(msg: string, data?: LogData): void;
  /** A logger for a sub-component: `component` is appended (`node:p2p`). */
  child(component: string): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const nullLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => nullLogger,
};

export interface JsonLoggerOptions {
  /** Short node name shown in every line (multi-node tests prefix per node). */
  node: string;
  component?: string;
  level?: LogLevel;
  /** Where a finished line goes (stderr in the CLI, an array in tests). */
  write: (line: string) => void;
  /** Injected clock (unix ms). */
  now?: () => number;
}

export function createJsonLogger(opts: JsonLoggerOptions): Logger {
  const min = rank[opts.level ?? 'info'];
  const now = opts.now ?? Date.now;
  const component = opts.component ?? 'node';
  const emit = (level: LogLevel, msg: string, data?: LogData): void => {
    if (rank[level] < min) return;
    const line: Record<string, unknown> = { t: new Date(now()).toISOString(), level, node: opts.node, component, msg };
    if (data !== undefined) {
      for (const [k, v] of Object.entries(data)) {
        line[k] = v instanceof Error ? { name: v.name, message: v.message, ...('code' in v ? { code: (v as { code: unknown }).code } : {}) } : typeof v === 'bigint' ? v.toString() : v;
      }
    }
    opts.write(JSON.stringify(line));
  };
  return {
    debug: (m, d) => emit('debug', m, d),
    info: (m, d) => emit('info', m, d),
    warn: (m, d) => emit('warn', m, d),
    error: (m, d) => emit('error', m, d),
    child: (c) => createJsonLogger({ ...opts, component: `${component}:${c}` }),
  };
}
