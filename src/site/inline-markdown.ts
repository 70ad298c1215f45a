const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML, then turns `code` spans into <code>: enough for hint sentences. */
export function inlineMarkdown(text: string): string {
  const escaped = text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}
