import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, registerEnumType, Resolver } from 'type-graphql';
import type { RequestContext } from '../context';
import { PaperSize } from './print-sheet.pdf';
import type { PrintSheetService } from './print-sheet.service';

registerEnumType(PaperSize, { name: 'PaperSize' });

@InputType()
export class PrintSheetInput {
  @Field(() => [ID], { description: '1 to 500 codes, printed in this order' })
  codeIds!: string[];

  @Field(() => PaperSize, { nullable: true, defaultValue: PaperSize.A4 })
  paper?: PaperSize | null;

  @Field(() => Int, { nullable: true, defaultValue: 3, description: 'codes per row, 1 to 6' })
  columns?: number | null;

  @Field(() => Boolean, { nullable: true, defaultValue: true, description: "print each code's label (else its ref) under it" })
  captions?: boolean | null;
}

@ObjectType({ description: 'A PDF of codes to print and cut out.' })
export class PrintSheet {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { description: 'a PDF, permanent like image URLs' })
  url!: string;

  @Field(() => Int)
  pageCount!: number;

  @Field(() => Int)
  codeCount!: number;
}

/** What the print resolvers need of the GraphQL context. */
export interface PrintContext {
  request: RequestContext;
  services: { printSheets: PrintSheetService };
}

@Resolver(() => PrintSheet)
export class PrintSheetResolver {
  @Mutation(() => PrintSheet, { description: 'a PDF of the codes: vector QR codes at least 3 cm wide, captions, cut marks' })
  createPrintSheet(
    @Arg('input', () => PrintSheetInput) input: PrintSheetInput,
    @Ctx() { request, services }: PrintContext,
  ): Promise<PrintSheet> {
    return services.printSheets.create(request, input);
  }
}
