// Thin helpers over the protobuf classes of `onnx-proto` (ONNX schema 1.10): int64 fields decode as
// Long objects, attributes and value infos are verbose to build by hand.
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;

/** int64 as protobufjs decodes it (a Long object) or as we write it (a number). */
export type Int64 = number | { toNumber(): number };

// Strict views of decoded messages: protobufjs fills every field of a decoded message (repeated fields
// with arrays, scalars with defaults), which its generated interfaces do not express.
// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace onnxTypes {
  export interface Attribute {
    name: string;
    type: number;
    i: Int64;
    f: number;
    s: Uint8Array;
    ints: Int64[];
    t?: Tensor | null;
    g?: Graph | null;
    graphs: Graph[];
  }
  export interface Node {
    name: string;
    opType: string;
    domain: string;
    input: string[];
    output: string[];
    attribute: Attribute[];
  }
  export interface Tensor {
    name: string;
    dataType: number;
    dims: Int64[];
    rawData: Uint8Array;
    floatData: number[];
    int32Data: number[];
    int64Data: Int64[];
    dataLocation: number;
    externalData: { key: string; value: string }[];
  }
  export type ValueInfo = onnxProto.onnx.IValueInfoProto & { name: string };
  export interface Graph {
    name: string;
    node: Node[];
    initializer: Tensor[];
    input: ValueInfo[];
    output: ValueInfo[];
    valueInfo: ValueInfo[];
  }
  export interface OpsetId {
    domain: string;
    version: Int64;
  }
  export interface Model {
    irVersion: Int64;
    opsetImport: OpsetId[];
    producerName: string;
    graph: Graph;
  }
}

export function decodeModel(bytes: Uint8Array): onnxTypes.Model {
  // A plain Uint8Array view, not a Buffer: protobufjs builds empty byte fields with `new
  // buf.constructor(0)`, which for a Buffer is the deprecated Buffer() constructor.
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return onnx.ModelProto.decode(view) as unknown as onnxTypes.Model;
}

export function encodeModel(model: onnxTypes.Model): Uint8Array {
  return onnx.ModelProto.encode(model as unknown as onnxProto.onnx.IModelProto).finish();
}

/** A new model message from plain fields (nested plain objects are encoded as they are). */
export function createModel(fields: {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  graph: { name: string; node: onnxTypes.Node[]; initializer: onnxTypes.Tensor[]; input: onnxTypes.ValueInfo[]; output: onnxTypes.ValueInfo[] };
}): onnxTypes.Model {
  return onnx.ModelProto.create(fields as unknown as onnxProto.onnx.IModelProto) as unknown as onnxTypes.Model;
}

export const DataType = onnxProto.onnx.TensorProto.DataType;

/** The bytes of a model holding one graph, at IR version 8 and the default domain's `opset`. */
export function encodeGraph(
  graph: { name: string; node: onnxTypes.Node[]; initializer?: onnxTypes.Tensor[]; input: onnxTypes.ValueInfo[]; output: onnxTypes.ValueInfo[] },
  opset = 18,
): Uint8Array {
  return encodeModel(
    createModel({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], producerName: 'fedkseed', graph: { initializer: [], ...graph } }),
  );
}

/** A one-node graph y = op(inputs…) over float32 vectors of `length`: the device path's probes and copies. */
export function singleNodeGraph(name: string, op: string, inputs: string[], length: number): Uint8Array {
  return encodeGraph({
    name,
    node: [node(op, inputs, ['y'], name)],
    input: [valueInfo('x', DataType.FLOAT, [length])],
    output: [valueInfo('y', DataType.FLOAT, [length])],
  });
}
const AttrType = onnxProto.onnx.AttributeProto.AttributeType;

/** Long-or-number (as protobufjs decodes int64) to a JS number; exact below 2^53. */
export function toNumber(v: Int64 | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function dataTypeName(code: number): string {
  return DataType[code] ?? `type ${code}`;
}

export type AttrValue = number | string | number[] | onnxTypes.Tensor | { float: number };

/** Builds a node; integers become INT/INTS attributes, `{ float: x }` a FLOAT attribute. */
export function node(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttrValue> = {}, domain = ''): onnxTypes.Node {
  const attribute = Object.entries(attrs).map(([key, value]) => attribute_(key, value));
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name, attribute, domain }) as unknown as onnxTypes.Node;
}

/** Appends a node with one output, named after it, and returns the output's name. */
export type AddNode = (op: string, inputs: string[], output: string, attrs?: Record<string, AttrValue>) => string;

/** An AddNode over a graph's node list. */
export function nodeAdder(nodes: onnxTypes.Node[]): AddNode {
  return (op, inputs, output, attrs = {}) => {
    nodes.push(node(op, inputs, [output], output, attrs));
    return output;
  };
}

/** The initializers some node reads: an unused one would still be uploaded with the graph. */
export function usedInitializers(initializers: readonly onnxTypes.Tensor[], nodes: readonly onnxTypes.Node[]): onnxTypes.Tensor[] {
  const used = new Set(nodes.flatMap((n) => n.input));
  return initializers.filter((t) => used.has(t.name));
}

function attribute_(name: string, value: AttrValue): onnxTypes.Attribute {
  return attributeProto(name, value) as unknown as onnxTypes.Attribute;
}

function attributeProto(name: string, value: AttrValue): onnxProto.onnx.AttributeProto {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return onnx.AttributeProto.create({ name, type: AttrType.INT, i: value });
  }
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: AttrType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttrType.INTS, ints: value });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: value.float });
  return onnx.AttributeProto.create({ name, type: AttrType.TENSOR, t: value as unknown as onnxProto.onnx.ITensorProto });
}

export function getIntAttr(n: onnxTypes.Node, name: string): number | undefined {
  const a = n.attribute.find((x) => x.name === name);
  return a ? toNumber(a.i) : undefined;
}

/** A tensor value info; a dimension given as a string is symbolic, null is unknown. */
export function valueInfo(name: string, elemType: number, dims: (number | string | null)[] | null): onnxTypes.ValueInfo {
  const shape = dims === null ? undefined : { dim: dims.map((d) => (d === null ? {} : typeof d === 'string' ? { dimParam: d } : { dimValue: d })) };
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape } } }) as onnxTypes.ValueInfo;
}

/** Dimensions of a value info: numbers, symbolic names, or null where unknown; null if no shape at all. */
export function valueInfoDims(v: onnxProto.onnx.IValueInfoProto): (number | string | null)[] | null {
  const shape = v.type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null && toNumber(d.dimValue) > 0 ? toNumber(d.dimValue) : null));
}

export function valueInfoElemType(v: onnxProto.onnx.IValueInfoProto): number {
  return v.type?.tensorType?.elemType ?? 0;
}

/** An int64 tensor constant (initializer or Constant value). */
export function int64Tensor(name: string, values: number[], dims: number[] = [values.length]): onnxTypes.Tensor {
  return onnx.TensorProto.create({ name, dataType: DataType.INT64, dims, int64Data: values }) as unknown as onnxTypes.Tensor;
}

export function floatTensor(name: string, values: ArrayLike<number>, dims: number[]): onnxTypes.Tensor {
  const data = Float32Array.from(values);
  return rawTensor(name, DataType.FLOAT, dims, new Uint8Array(data.buffer));
}

export function rawTensor(name: string, dataType: number, dims: number[], rawData: Uint8Array): onnxTypes.Tensor {
  return onnx.TensorProto.create({ name, dataType, dims, rawData }) as unknown as onnxTypes.Tensor;
}

/** Default-domain opset version of a model (0 if none is imported). */
export function defaultOpset(model: onnxTypes.Model): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 0;
}
