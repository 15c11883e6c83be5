// Issue 19, idle RSS: @nestjs/common's console logger builds an Intl.DateTimeFormat when its module loads, which
// made V8 check every ICU locale (~8 MiB of RSS in every process). service-kit loads it with the formatter deferred.
import { deferredDateTimeFormat, withDeferredDateTimeFormat } from './load-nest-common';

describe('loading @nestjs/common with a deferred DateTimeFormat (issue 19, idle RSS)', () => {
  const options: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: 'numeric', minute: 'numeric', second: 'numeric' };

  it('builds no real DateTimeFormat while @nestjs/common loads, and puts the real constructor back', () => {
    const real = Intl.DateTimeFormat;
    const built: unknown[] = [];
    const counting = new Proxy(real, { construct: (target, args, newTarget) => (built.push(args), Reflect.construct(target, args, newTarget)) });
    Intl.DateTimeFormat = counting;
    try {
      // A plain require, as service-kit's: import() would load it after the deferral ended.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      jest.isolateModules(() => withDeferredDateTimeFormat(() => require('@nestjs/common')));
      expect(built).toEqual([]);
      expect(Intl.DateTimeFormat).toBe(counting);
    } finally {
      Intl.DateTimeFormat = real;
    }
  });

  it('formats as the real one once used, building it then and only once', () => {
    let builds = 0;
    const Counting = new Proxy(Intl.DateTimeFormat, { construct: (target, args, newTarget) => (builds++, Reflect.construct(target, args, newTarget)) });
    const deferred = new (deferredDateTimeFormat(Counting))(undefined, options);
    expect(builds).toBe(0);
    const at = Date.UTC(2026, 11, 7, 20, 45, 1);
    expect(deferred.format(at)).toBe(new Intl.DateTimeFormat(undefined, options).format(at));
    expect(deferred.formatToParts(at)).toEqual(new Intl.DateTimeFormat(undefined, options).formatToParts(at));
    expect(deferred.resolvedOptions().year).toBe('numeric');
    expect(builds).toBe(1);
  });

  it('leaves the real DateTimeFormat in place when loading throws', () => {
    const real = Intl.DateTimeFormat;
    expect(() =>
      withDeferredDateTimeFormat(() => {
        throw new Error('no such module');
      }),
    ).toThrow('no such module');
    expect(Intl.DateTimeFormat).toBe(real);
  });
});
