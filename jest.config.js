// jest on ESM TypeScript: ts-jest transpiles each file on its own (isolatedModules in tsconfig; `npm run
// typecheck` checks the types), and Node runs the modules natively (npm test passes
// --experimental-vm-modules).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.jest.json' }],
  },
  // The examples import the SDK by its name; tests run its source, not a dist/ built earlier (as tsconfig.json's paths).
  moduleNameMapper: { '^@agent-idp/sdk$': '<rootDir>/sdk/src/index.ts' },
  testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/src/**/*.test.ts', '<rootDir>/config/**/*.test.ts'],
  testTimeout: 60_000,
  // Each test file starts its own app and database; two at a time suits a 2-core machine.
  maxWorkers: 2,
  // Tests run in a different order every time (the seed is printed; --seed=N repeats a run), so
  // that a test leaning on another one's leftovers is found.
  randomize: true,
};
