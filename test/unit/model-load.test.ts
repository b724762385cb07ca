// Loading and validation: clear errors for bad files, exact float16/bfloat16 decoding, identity hashes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ModelError } from '../../trainer/model/errors';
import { loadModel, parseModel } from '../../trainer/model/load';
import { DataType, decodeModel, encodeGraph, encodeModel, node, valueInfo } from '../../trainer/model/onnx';
import { decodeFloats, encodeFloats, floatToHalf } from '../../trainer/model/tensor-data';
import { buildBigramModel, BIGRAM_BIAS, BIGRAM_TABLE } from '../helpers/bigram-model';

const dir = mkdtempSync(join(tmpdir(), 'fedkseed-model-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rejects(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected ModelError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a file that is not ONNX, a truncated model and a missing file are refused with the file named', async () => {
  const text = join(dir, 'notes.onnx');
  writeFileSync(text, 'this is not a model\n'.repeat(20));
  await assert.rejects(loadModel(text), (e: Error) => e instanceof ModelError && e.message.startsWith(text) && /not (a valid )?(an )?ONNX/.test(e.message));

  const bytes = buildBigramModel({ vocab: 16, seed: 1 }).bytes;
  const cut = join(dir, 'cut.onnx');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await assert.rejects(
    loadModel(cut),
    (e: Error) => e instanceof ModelError && e.message.startsWith(cut) && /corrupt or truncated|not an ONNX/.test(e.message),
  );

  await assert.rejects(loadModel(join(dir, 'absent.onnx')), (e: Error) => e instanceof ModelError && /cannot be read/.test(e.message));
});

function modelWith(inputs: [string, number][], outputs: [string, number, number][]): Uint8Array {
  return encodeGraph(
    {
      name: 'g',
      node: [node('Identity', [inputs[0][0]], ['y'], 'n')],
      input: inputs.map(([n, t]) => valueInfo(n, t, ['b', 's'])),
      output: outputs.map(([n, t, rank]) =>
        valueInfo(
          n,
          t,
          Array.from({ length: rank }, (_, i) => `d${i}`),
        ),
      ),
    },
    17,
  );
}

test('models without the causal-LM interface are refused, naming what is wrong', () => {
  const L = DataType.INT64;
  rejects(() => parseModel(modelWith([['pixel_values', DataType.FLOAT]], [['logits', 1, 3]]), 'vision.onnx'), 'vision.onnx', /no 'input_ids'/);
  rejects(() => parseModel(modelWith([['input_ids', L]], [['logits', 1, 3]]), 'a.onnx'), 'a.onnx', /attention_mask/);
  rejects(
    () =>
      parseModel(
        modelWith(
          [
            ['input_ids', L],
            ['attention_mask', L],
          ],
          [['last_hidden_state', 1, 3]],
        ),
        'b.onnx',
      ),
    'b.onnx',
    /no 'logits' output/,
  );
  rejects(
    () =>
      parseModel(
        modelWith(
          [
            ['input_ids', L],
            ['attention_mask', L],
          ],
          [['logits', 1, 2]],
        ),
        'c.onnx',
      ),
    'c.onnx',
    /rank 3/,
  );
  rejects(
    () =>
      parseModel(
        modelWith(
          [
            ['input_ids', DataType.FLOAT],
            ['attention_mask', L],
          ],
          [['logits', 1, 3]],
        ),
        'd.onnx',
      ),
    'd.onnx',
    /int64 or int32/,
  );
  rejects(
    () =>
      parseModel(
        modelWith(
          [
            ['input_ids', L],
            ['attention_mask', L],
            ['past_key_values.0.key', 1],
          ],
          [['logits', 1, 3]],
        ),
        'e.onnx',
      ),
    'e.onnx',
    /KV-cache input 'past_key_values\.0\.key' must have a shape of rank 3 or more/,
  );
  rejects(
    () =>
      parseModel(
        modelWith(
          [
            ['input_ids', L],
            ['attention_mask', L],
            ['token_type_ids', L],
          ],
          [['logits', 1, 3]],
        ),
        'f.onnx',
      ),
    'f.onnx',
    /unexpected inputs for a causal LM: token_type_ids/,
  );
  const ok = parseModel(
    modelWith(
      [
        ['input_ids', DataType.INT32],
        ['attention_mask', L],
        ['position_ids', L],
      ],
      [['logits', 1, 3]],
    ),
    'g.onnx',
  );
  assert.deepEqual(ok.io.inputIds, { name: 'input_ids', type: 'int32' });
  assert.equal(ok.io.positionIds?.name, 'position_ids');
});

test('float16 and bfloat16 initializers become exact float32 master copies; float constants are not weights', () => {
  for (const storage of ['float16', 'bfloat16'] as const) {
    const m = buildBigramModel({ vocab: 8, seed: 3, storage, biasThroughHalfOp: true });
    const loaded = parseModel(m.bytes, `bigram-${storage}.onnx`);
    assert.deepEqual(
      loaded.weights.map((w) => [w.name, w.storage, w.dims]),
      [
        [BIGRAM_BIAS, storage, [8]],
        [BIGRAM_TABLE, storage, [8, 8]],
      ],
    );
    assert.deepEqual(loaded.weights[0].data, m.bias);
    assert.deepEqual(loaded.weights[1].data, m.table);
    // The float16 Constant node the bias goes through is not a weight.
    assert.equal(loaded.weights.length, 2);
  }
});

test('float16 conversion: every finite half survives half → float → half, and rounding is to nearest', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const floats = new Float32Array(65536);
  decodeFloats(new Uint8Array(all.buffer), 'float16', floats);
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
    assert.equal(floatToHalf(floats[h]), h, `half ${h.toString(16)}`);
  }
  // 1 + 2^-11 is halfway between 1 and the next half: ties go to even (1).
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00);
  assert.equal(floatToHalf(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  const bf = new Float32Array(1);
  decodeFloats(encodeFloats(Float32Array.of(1.00390625), 'bfloat16'), 'bfloat16', bf);
  assert.equal(bf[0], 1); // halfway to the next bfloat16: ties to even
});

test('identity is the SHA-256 of the model bytes and changes with any byte', async () => {
  const bundled = await loadModel('models/tiny-code-lm/model.onnx');
  assert.equal(bundled.identity, '6ce7c3b4771473827d6ce6f9281ade09da60bad71c6c860b9f721f8dbe15d4e5');
  const a = buildBigramModel({ vocab: 8, seed: 1 });
  const proto = decodeModel(a.bytes);
  proto.producerName = 'other';
  assert.notEqual(parseModel(a.bytes, 'a').identity, parseModel(encodeModel(proto), 'b').identity);
  assert.equal(parseModel(a.bytes, 'a').identity, parseModel(readFileSyncCopy(a.bytes), 'c').identity);
});

function readFileSyncCopy(bytes: Uint8Array): Uint8Array {
  const path = join(dir, 'copy.onnx');
  writeFileSync(path, bytes);
  return readFileSync(path);
}
