// A few lines of DOM building instead of a framework: every page is a function that fills a container.
type Child = Node | string | number | false | null | undefined;
type Attributes = Record<string, string | number | boolean | EventListener | undefined>;

/** An element with attributes ("on…" ones are listeners; `false`/undefined ones are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `parent` shows. */
export function show(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** "MODEL_STATE_READY" → "READY". */
export const enumName = (value: string | undefined, prefix: string): string => (value ?? `${prefix}UNSPECIFIED`).replace(prefix, "");

export const formatTime = (unixMs: string | number | undefined): string => (unixMs ? new Date(Number(unixMs)).toLocaleString() : "—");

export const formatNumber = (n: number | undefined, digits = 2): string => (n === undefined || !Number.isFinite(n) ? "—" : n.toFixed(digits));
