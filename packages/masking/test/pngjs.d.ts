// The part of pngjs@7's API the tests use (the package ships no types).
declare module "pngjs" {
  export class PNG {
    constructor(options?: { width?: number; height?: number; colorType?: number; inputColorType?: number })
    width: number
    height: number
    data: Buffer
    static sync: {
      read(buffer: Buffer): PNG
      write(png: PNG, options?: { colorType?: number; inputColorType?: number }): Buffer
    }
  }
}
