import { defineConfig } from 'vitest/config';

const CONTROLLER_TESTS = 'test/integration/controller*.test.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: [CONTROLLER_TESTS],
          environment: 'node',
          // One harness (apiserver, PostgreSQL, Azure emulator) for the project; tests keep
          // apart by namespace, identity and role names.
          globalSetup: ['test/harness/global-setup.ts'],
          pool: 'forks',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // A controller reconciles every EntraDatabaseAccess in the cluster, so two controllers
          // in parallel files would act on each other's resources. These files get a harness of
          // their own and run one at a time, after the other projects: two harnesses under load
          // at once overran 2 cores (token requests to the emulator timed out).
          name: 'controller',
          sequence: { groupOrder: 1 },
          include: [CONTROLLER_TESTS],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // The client suite: docs/aks-guide.md's connection snippets run as written, with the
          // real client libraries of each language, as the app of one pod admitted through the
          // apiserver (test/clients/world.ts). Its own harness; one language at a time (a JVM
          // and a Python interpreter at once overran 2 cores). Toolchain installs happen in
          // beforeAll, hence the long hook timeout.
          name: 'clients',
          sequence: { groupOrder: 3 },
          include: ['test/clients/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/clients/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 900_000,
        },
      },
      {
        test: {
          // Faults, fuzzing, load and tenant-isolation attacks (`make test-reliability`): slow,
          // and several restart the harness's parts, so each file gets the harness to itself.
          name: 'reliability',
          sequence: { groupOrder: 2 },
          include: ['test/reliability/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
