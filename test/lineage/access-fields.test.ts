// Lineage fields of the model-access fixes: the client's x-request-id kept as an attribute
// (request.clientRequestId) and the candidates policy rules dropped (policy.droppedCandidates).
// Validated against the .proto and read back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromProtoJson, toProtoJson } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { completeRecord } from './fixtures.ts';

describe('lineage: clientRequestId and droppedCandidates', () => {
  const rec = completeRecord({
    request: { clientApi: 'openai', endpoint: '/v1/chat/completions', requestedModel: 'llama', clientRequestId: 'client-id-0001' },
    policy: {
      bundleRevision: 'abc',
      droppedCandidates: [
        { model: 'gpt-4o', param: 'models[0]', policy: 'free-tier', rule: 'premium-models', message: 'the free tier cannot use gpt-4o' },
        { model: 'claude', param: 'models[1]', deployment: 'claude/us', policy: 'eu-residency', rule: 'eu-or-self-hosted', message: 'EU only' },
      ],
    },
  });

  it('are in the schema and survive the proto JSON round trip', () => {
    const json = toProtoJson(rec);
    assert.deepEqual(validateLineageRecord(json), []);
    assert.equal((json.request as Record<string, unknown>).clientRequestId, 'client-id-0001');
    const back = fromProtoJson(JSON.parse(JSON.stringify(json)));
    assert.equal(back?.request.clientRequestId, 'client-id-0001');
    assert.deepEqual(back?.policy?.droppedCandidates, rec.policy?.droppedCandidates);
  });

  it('a malformed client id or a drop without its rule is rejected by the schema', () => {
    const bad = toProtoJson(completeRecord({ request: { endpoint: '/v1/chat/completions', clientRequestId: 'has space!' } }));
    assert.notDeepEqual(validateLineageRecord(bad), []);
    const noRule = toProtoJson(completeRecord({ policy: { droppedCandidates: [{ model: 'gpt-4o', policy: 'p', rule: '' }] } }));
    assert.notDeepEqual(validateLineageRecord(noRule), []);
  });
});
