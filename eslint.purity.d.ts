// Types for eslint.purity.js (plain JS so eslint.config.js can import it).
export declare const impureModules: { group: string[]; message: string }[];
export declare const impureGlobals: { name: string; message: string }[];
export declare const impureSyntax: { selector: string; message: string }[];
export interface Layer {
  name: string;
  files: string[];
  forbid: string[];
  extra?: { group: string[]; message: string }[];
  message: string;
}
export declare const layers: Layer[];
export declare function layerPatterns(layer: Layer): { group: string[]; message: string }[];
export declare function layerNamed(name: string): Layer;
export declare const FUNCTION_SIZE_PENDING: string[];
export declare const sizeRules: { files: string[]; rules: Record<string, unknown> }[];
