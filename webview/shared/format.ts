// Number formatting shared by the webviews and the status bar: the protocol's own.
export { formatBytes, formatLoss } from '../../protocol/format';
