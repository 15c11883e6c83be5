// Issue 19, idle RSS: the policy schema was compiled when the policy module loaded, in every gateway, though the
// policy engine is off unless an operator configures one. It is compiled when the first policy is validated.
describe('the policy schema (issue 19, idle RSS)', () => {
  it('is compiled when the first policy is validated, not when the module loads, and only once', () => {
    jest.isolateModules(() => {
      // Fresh copies of both, so the spy sees the compile the policy module's own Ajv makes.
      /* eslint-disable @typescript-eslint/no-require-imports */
      const Ajv = (require('ajv') as typeof import('ajv')).default;
      const compile = jest.spyOn(Ajv.prototype, 'compile');
      const { compilePolicy } = require('./policy') as typeof import('./policy');
      /* eslint-enable @typescript-eslint/no-require-imports */
      expect(compile).not.toHaveBeenCalled();
      compilePolicy({ version: 1, servers: [{ id: 'x', action: 'deny', servers: ['a.example'] }] });
      expect(() => compilePolicy({ version: 1, servers: [{ id: 'x', action: 'maybe', servers: [] }] })).toThrow('invalid policy');
      expect(compile).toHaveBeenCalledTimes(1);
    });
  });
});
