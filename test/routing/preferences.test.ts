import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { parseModels, parseProviderPreferences } from '../../service/routing/preferences.ts';

const known = new Set(['openai', 'azure-eu', 'anthropic']);

describe('parseProviderPreferences: valid input', () => {
  const cases: { name: string; raw: unknown; want: unknown }[] = [
    { name: 'absent', raw: undefined, want: undefined },
    { name: 'null', raw: null, want: undefined },
    { name: 'empty', raw: {}, want: {} },
    {
      name: 'everything',
      raw: {
        order: ['OpenAI', 'anthropic', 'openai'],
        only: ['openai', 'anthropic'],
        ignore: ['azure-eu'],
        sort: 'price',
        data_collection: 'deny',
        allow_fallbacks: false,
        zdr: true,
        max_price: { prompt: 1, completion: 2.5 },
      },
      want: {
        order: ['openai', 'anthropic'],
        only: ['openai', 'anthropic'],
        ignore: ['azure-eu'],
        sort: 'price',
        data_collection: 'deny',
        allow_fallbacks: false,
        zdr: true,
        max_price: { prompt: 1, completion: 2.5 },
      },
    },
    { name: 'null fields are absent', raw: { order: null, sort: null }, want: {} },
    { name: 'no-op forms of unsupported knobs', raw: { require_parameters: false, quantizations: [], enforce_distillable_text: false }, want: {} },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(parseProviderPreferences(c.raw, known), c.want));
  }
});

describe('parseProviderPreferences: bad input → 400 with param', () => {
  const cases: { raw: unknown; param: string; msg: RegExp }[] = [
    { raw: 'openai', param: 'provider', msg: /must be an object/ },
    { raw: ['openai'], param: 'provider', msg: /must be an object/ },
    { raw: { order: 'openai' }, param: 'provider.order', msg: /must be an array of provider names/ },
    { raw: { only: ['openai', 3] }, param: 'provider.only[1]', msg: /must be a non-empty string/ },
    { raw: { ignore: [''] }, param: 'provider.ignore[0]', msg: /must be a non-empty string/ },
    { raw: { order: ['openai', 'togetherai'] }, param: 'provider.order[1]', msg: /unknown provider 'togetherai'/ },
    { raw: { sort: 'cheapest' }, param: 'provider.sort', msg: /must be one of 'price', 'latency', 'throughput'/ },
    { raw: { data_collection: 'no' }, param: 'provider.data_collection', msg: /one of 'allow', 'deny'/ },
    { raw: { allow_fallbacks: 'false' }, param: 'provider.allow_fallbacks', msg: /must be a boolean/ },
    { raw: { zdr: 1 }, param: 'provider.zdr', msg: /must be a boolean/ },
    { raw: { max_price: 3 }, param: 'provider.max_price', msg: /must be an object/ },
    { raw: { max_price: { prompt: -1 } }, param: 'provider.max_price.prompt', msg: /must be a number ≥ 0/ },
    { raw: { max_price: { request: 1 } }, param: 'provider.max_price.request', msg: /not supported/ },
    { raw: { require_parameters: true }, param: 'provider.require_parameters', msg: /not supported/ },
    { raw: { quantizations: ['int8'] }, param: 'provider.quantizations', msg: /not supported/ },
    { raw: { sorting: 'price' }, param: 'provider.sorting', msg: /unknown field 'provider.sorting'/ },
    { raw: { only: Array.from({ length: 65 }, () => 'openai') }, param: 'provider.only', msg: /at most 64/ },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.raw).slice(0, 60)} → ${c.param}`, () => {
      assert.throws(
        () => parseProviderPreferences(c.raw, known),
        (e: unknown) => {
          assert.ok(e instanceof GatewayError);
          assert.equal(e.status, 400);
          assert.equal(e.param, c.param);
          assert.match(e.message, c.msg);
          return true;
        },
      );
    });
  }
});

describe('parseModels', () => {
  it('passes arrays of names through', () => {
    assert.deepEqual(parseModels(['a', 'b', 'a']), ['a', 'b', 'a']);
    assert.equal(parseModels(undefined), undefined);
    assert.equal(parseModels(null), undefined);
  });
  const bad: { raw: unknown; param: string }[] = [
    { raw: 'a', param: 'models' },
    { raw: { 0: 'a' }, param: 'models' },
    { raw: ['a', 1], param: 'models[1]' },
    { raw: ['a', ''], param: 'models[1]' },
    { raw: Array.from({ length: 11 }, (_, i) => `m${i}`), param: 'models' },
  ];
  for (const c of bad) {
    it(`rejects ${JSON.stringify(c.raw).slice(0, 40)}`, () => {
      assert.throws(
        () => parseModels(c.raw),
        (e: unknown) => e instanceof GatewayError && e.status === 400 && e.param === c.param,
      );
    });
  }
});
