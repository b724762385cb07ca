// Graph walking shared by the model layer, and the float32 weight sources (weight-sources.ts) under the
// name the device graph uses.
import type { onnxTypes } from './onnx';
import type { WeightSpec } from './load';
import { substituteWeightSources } from './weight-sources';

/** Every node of a graph and of its subgraphs (If/Loop/Scan bodies), which may read outer names. */
export function allNodes(graph: onnxTypes.Graph): onnxTypes.Node[] {
  const out: onnxTypes.Node[] = [];
  const visit = (g: onnxTypes.Graph): void => {
    for (const n of g.node) {
      out.push(n);
      for (const a of n.attribute) {
        if (a.g) visit(a.g);
        for (const sub of a.graphs) visit(sub);
      }
    }
  };
  visit(graph);
  return out;
}

/**
 * Weight name → the float32 value the graph now reads it from; see substituteWeightSources (which also
 * handles transposed copies of a tied embedding and quantized weights, and removes the initializers the
 * weights replace).
 */
export function substituteFloatSources(graph: onnxTypes.Graph, weights: WeightSpec[]): Map<string, string> {
  return substituteWeightSources(graph, weights);
}
