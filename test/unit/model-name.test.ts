// Every view names a model as a person knows it: its folder or its Hugging Face repository, never the
// file name model.onnx that every export shares.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { modelDisplayName } from '../../extension/modelName';

test('an .onnx file is named by its folder', () => {
  assert.equal(modelDisplayName('/home/me/models/tiny-code-model/model.onnx'), 'tiny-code-model');
  assert.equal(modelDisplayName('/ext/models/tiny-code-lm/model.onnx'), 'tiny-code-lm');
  assert.equal(modelDisplayName('C:\\models\\phi-2\\model.onnx'.replace(/\\/g, '/')), 'phi-2');
});

test('a transformers.js repository keeps its files in onnx/: the repository names the model', () => {
  assert.equal(modelDisplayName('/models/Qwen2.5-0.5B-Instruct/onnx/model_q4.onnx'), 'Qwen2.5-0.5B-Instruct');
});

test('a Hugging Face cache snapshot is named by its repository, not its revision hash', () => {
  assert.equal(modelDisplayName('/root/.cache/huggingface/hub/models--Xenova--gpt2/snapshots/0123abcd/onnx/decoder_model.onnx'), 'Xenova/gpt2');
  assert.equal(modelDisplayName('/root/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M'), 'HuggingFaceTB/SmolLM2-135M');
});

test('a folder, or an org/name id, is its own name', () => {
  assert.equal(modelDisplayName('/models/my-export/'), 'my-export');
  assert.equal(modelDisplayName('Xenova/gpt2'), 'Xenova/gpt2');
});

test('a file with no folder keeps its file name', () => {
  assert.equal(modelDisplayName('model.onnx'), 'model.onnx');
  assert.equal(modelDisplayName('/model.onnx'), 'model.onnx');
});
