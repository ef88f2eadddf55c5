// Text imports (`import x from './f.toml' with { type: 'text' }`) of config and proto files.
declare module '*.toml' {
  const text: string;
  export default text;
}
declare module '*.proto' {
  const text: string;
  export default text;
}
declare module '*.yaml' {
  const text: string;
  export default text;
}
