// Loads @nestjs/common with its console logger's date formatter deferred. That module builds an
// `Intl.DateTimeFormat` when it loads, and V8's first DateTimeFormat checks every ICU locale for date data,
// which maps ~8 MiB of the node binary's ICU pages into the process (issue 19, idle RSS). fedgate logs
// through pino (`PinoNestLogger`), so Nest's formatter is never used; should it be, it is built then.
// Imported first by service-kit's index, before anything else loads @nestjs/common.
type DateTimeFormatConstructor = typeof Intl.DateTimeFormat;

/** A DateTimeFormat constructor whose instances build the real formatter at their first use. */
export function deferredDateTimeFormat(Real: DateTimeFormatConstructor): DateTimeFormatConstructor {
  function DeferredDateTimeFormat(locales?: string | string[], options?: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
    let real: Intl.DateTimeFormat | undefined;
    const formatter = () => (real ??= new Real(locales, options));
    return {
      format: (date) => formatter().format(date),
      formatToParts: (date) => formatter().formatToParts(date),
      formatRange: (start, end) => formatter().formatRange(start, end),
      formatRangeToParts: (start, end) => formatter().formatRangeToParts(start, end),
      resolvedOptions: () => formatter().resolvedOptions(),
      [Symbol.toStringTag]: 'Intl.DateTimeFormat',
    } as Intl.DateTimeFormat;
  }
  return Object.assign(DeferredDateTimeFormat, { supportedLocalesOf: Real.supportedLocalesOf }) as unknown as DateTimeFormatConstructor;
}

/** Runs `load` with `Intl.DateTimeFormat` deferred, and puts the real one back. */
export function withDeferredDateTimeFormat<T>(load: () => T): T {
  const real = Intl.DateTimeFormat;
  Intl.DateTimeFormat = deferredDateTimeFormat(real);
  try {
    return load();
  } finally {
    Intl.DateTimeFormat = real;
  }
}

// A plain require, so jest's module registry loads it too (one copy of Nest and its metadata in tests).
// eslint-disable-next-line @typescript-eslint/no-require-imports
withDeferredDateTimeFormat(() => require('@nestjs/common'));
