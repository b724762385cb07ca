// Graph walking shared by the model layer.
import type { onnxTypes } from './onnx';

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
