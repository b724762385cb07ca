// Registers the webview UI toolkit components the views use (each registration adds its custom element).
// Only components whose templates need no inline style attributes are used (the CSP forbids them):
// vscode-badge and vscode-tag (built on FAST's badge template) have one, so the phase pill is plain HTML.
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDivider, vsCodePanels, vsCodePanelTab, vsCodePanelView } from '@vscode/webview-ui-toolkit';

export function registerToolkit(): void {
  provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDivider(), vsCodePanels(), vsCodePanelTab(), vsCodePanelView());
}
