// jest on ESM TypeScript: @swc/jest strips the types (tsc --noEmit checks them), and Node runs
// the modules natively (npm test passes --experimental-vm-modules).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
        module: { type: 'es6' },
      },
    ],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/src/**/*.test.ts'],
  testTimeout: 60_000,
  // Each test file starts its own app and database; two at a time suits a 2-core machine.
  maxWorkers: 2,
};
