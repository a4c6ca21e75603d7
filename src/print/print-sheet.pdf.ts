import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';

export enum PaperSize {
  A4 = 'A4',
  LETTER = 'LETTER',
}

/** One code on a sheet: what it encodes, and the line printed under it. */
export interface SheetCode {
  link: string;
  caption: string | null;
}

export interface SheetLayout {
  paper: PaperSize;
  columns: number;
  captions: boolean;
}

/** PDF points: 72 to the inch. */
const MM = 72 / 25.4;
const MARGIN = 10 * MM;
/** The least width of a code on paper, its quiet zone included: 3 cm. */
export const MIN_CODE_WIDTH = 30 * MM;
const CAPTION_HEIGHT = 12;
const CAPTION_FONT_SIZE = 7.5;
/** The quiet zone the QR standard asks for, in modules, on each side. */
const QUIET_ZONE_MODULES = 4;
const CUT_MARK_LENGTH = 4;

/** Dark modules of one row as runs [start, length): one rectangle per run, not per module. */
function darkRuns(modules: { size: number; get(row: number, column: number): number }, row: number): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let column = 0; column <= modules.size; column++) {
    const dark = column < modules.size && modules.get(row, column) === 1;
    if (dark && start < 0) start = column;
    if (!dark && start >= 0) {
      runs.push([start, column - start]);
      start = -1;
    }
  }
  return runs;
}

/**
 * A print sheet as a PDF: the codes in a grid, as vector QR codes (error correction H,
 * with their quiet zone) at least 3 cm wide, a caption under each, and cut marks at the
 * corners of every cell. PDFKit writes the pages as they are drawn; the bytes are
 * gathered at the end (a sheet of 500 codes is about a megabyte).
 */
export async function renderPrintSheet(codes: SheetCode[], layout: SheetLayout): Promise<{ bytes: Buffer; pageCount: number }> {
  const document = new PDFDocument({
    size: layout.paper === PaperSize.A4 ? 'A4' : 'LETTER',
    margin: 0,
    autoFirstPage: false,
    compress: true,
  });
  const chunks: Buffer[] = [];
  document.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    document.on('end', resolve);
    document.on('error', reject);
  });
  document.info.Title = 'Messenger codes';
  document.info.Creator = 'messenger-code-gateway';

  const [pageWidth, pageHeight] = layout.paper === PaperSize.A4 ? [595.28, 841.89] : [612, 792];
  const cellWidth = (pageWidth - 2 * MARGIN) / layout.columns;
  if (cellWidth < MIN_CODE_WIDTH) throw new Error(`a cell of ${cellWidth} pt is narrower than 3 cm`);
  const cellHeight = cellWidth + (layout.captions ? CAPTION_HEIGHT : 0);
  const rowsPerPage = Math.max(1, Math.floor((pageHeight - 2 * MARGIN) / cellHeight));
  const perPage = rowsPerPage * layout.columns;

  codes.forEach((code, index) => {
    if (index % perPage === 0) document.addPage();
    const slot = index % perPage;
    const x = MARGIN + (slot % layout.columns) * cellWidth;
    const y = MARGIN + Math.floor(slot / layout.columns) * cellHeight;

    const { modules } = QRCode.create(code.link, { errorCorrectionLevel: 'H' });
    const module = cellWidth / (modules.size + 2 * QUIET_ZONE_MODULES);
    const origin = { x: x + QUIET_ZONE_MODULES * module, y: y + QUIET_ZONE_MODULES * module };
    for (let row = 0; row < modules.size; row++) {
      for (const [start, length] of darkRuns(modules, row)) {
        document.rect(origin.x + start * module, origin.y + row * module, length * module, module);
      }
    }
    document.fillColor('#000000').fill();

    if (layout.captions && code.caption) {
      document
        .font('Helvetica')
        .fontSize(CAPTION_FONT_SIZE)
        .fillColor('#000000')
        .text(code.caption, x + 2, y + cellWidth, {
          width: cellWidth - 4,
          height: CAPTION_HEIGHT,
          align: 'center',
          lineBreak: false,
          ellipsis: true,
        });
    }

    // Cut marks: a short tick along each edge at the four corners of the cell.
    document.lineWidth(0.3).strokeColor('#888888');
    for (const [cornerX, cornerY, dx, dy] of [
      [x, y, 1, 1],
      [x + cellWidth, y, -1, 1],
      [x, y + cellHeight, 1, -1],
      [x + cellWidth, y + cellHeight, -1, -1],
    ]) {
      document
        .moveTo(cornerX, cornerY)
        .lineTo(cornerX + dx * CUT_MARK_LENGTH, cornerY)
        .stroke();
      document
        .moveTo(cornerX, cornerY)
        .lineTo(cornerX, cornerY + dy * CUT_MARK_LENGTH)
        .stroke();
    }
  });
  const pageCount = Math.ceil(codes.length / perPage);
  document.end();
  await ended;
  return { bytes: Buffer.concat(chunks), pageCount };
}
