// Builds the HTML shell of every webview: a strict Content-Security-Policy (scripts only with this
// page's nonce, resources only from the extension's own folders, no network), the shared stylesheet
// and one bundled script from dist/webview/.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';

export type WebviewBundle = 'dashboard' | 'sidebar';

/** The only folders a webview may load from. */
export function webviewResourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')];
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, enableCommandUris: false, localResourceRoots: webviewResourceRoots(extensionUri) };
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderWebviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: WebviewBundle, title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${bundle}.js`));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    // The toolkit (FAST) inserts a <style> element to probe :focus-visible; it carries the nonce
    // read from the csp-nonce meta tag, so no 'unsafe-inline' is needed.
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
  <meta property="csp-nonce" content="${escapeAttribute(nonce)}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${escapeAttribute(style.toString())}">
  <title>${escapeAttribute(title)}</title>
</head>
<body class="view-${bundle}">
  <main id="root"></main>
  <script nonce="${escapeAttribute(nonce)}" src="${escapeAttribute(script.toString())}"></script>
</body>
</html>`;
}
