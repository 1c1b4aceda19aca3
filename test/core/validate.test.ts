/** lib/core/validate.ts: every resolver refuses settings that are not an object with one ConfigError, never a TypeError. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, knownKeys, UserError } from '../../lib/core/validate';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { resolveNinConfig } from '../../lib/core/model';
import { resolveHealthConfig } from '../../lib/core/health';

test('null, a number or an array as settings: a ConfigError naming the part, for every resolver', () => {
  const resolvers: Array<[string, (v: never) => unknown]> = [
    ['training', resolveTrainConfig], ['model', resolveNinConfig], ['health', resolveHealthConfig],
  ];
  for (const [part, resolve] of resolvers) {
    for (const bad of [null, 3, [1]]) {
      assert.throws(() => resolve(bad as never), (err: unknown) => err instanceof ConfigError &&
        new RegExp(`^the ${part} options must be an object of settings, got `).test(err.message), `${part}: ${String(bad)}`);
    }
  }
  assert.throws(() => knownKeys('x', { a: 1 }, { b: 1 }), /unknown x option "a"; known: b/);
});

test('a UserError says its fields in the words asked for: a table or a function', () => {
  const err = new UserError((n, nameOf) => `${n} must be positive; see ${nameOf('warmupSteps')}`, 'lr');
  assert.equal(err.message, 'lr must be positive; see warmupSteps');
  assert.equal(err.messageFor({ lr: '--lr', warmupSteps: '--warmup-steps' }), '--lr must be positive; see --warmup-steps');
  assert.equal(err.messageFor((f) => `train.${f}`), 'train.lr must be positive; see train.warmupSteps');
  assert.equal(new UserError('plain').messageFor({ lr: '--lr' }), 'plain');
});
