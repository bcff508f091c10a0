import {
  AdminDeleteMessageInput,
  AdminReport,
  AdminUserInput,
  AuditPage,
  Ban,
  BanUserInput,
  Erased,
  ListAuditInput,
  ListReportsInput,
  Message,
  ReportPage,
  ResolveReportInput,
  Unbanned,
} from '../../../contracts/index.ts';
import { adminProcedure } from './admin.procedure.ts';
import { router } from './procedures.ts';

/** Moderation, for admin credentials only (README "Admin API"). A user's export is an HTTP route: `GET /admin/users/{userId}/export`. */
export const adminRouter = router({
  reports: router({
    /** Reports oldest first, optionally of one status. */
    list: adminProcedure
      .input(ListReportsInput)
      .meta({ output: ReportPage })
      .query(({ ctx, input }) => ctx.services.admin.moderation.listReports(ctx.em.getConnection(), input)),
    /** Resolves an open report: dismiss it, delete the reported message for good, or ban the reported user. */
    resolve: adminProcedure
      .input(ResolveReportInput)
      .meta({ output: AdminReport })
      .mutation(({ ctx, input }) => ctx.services.admin.moderation.resolveReport(ctx.em, ctx.actor, input)),
  }),
  users: router({
    /** Bans a user: their tokens are refused and their sockets close on every instance. */
    ban: adminProcedure
      .input(BanUserInput)
      .meta({ output: Ban })
      .mutation(({ ctx, input }) => ctx.services.admin.moderation.ban(ctx.em, ctx.actor, input)),
    /** Lifts a ban. Idempotent. */
    unban: adminProcedure
      .input(AdminUserInput)
      .meta({ output: Unbanned })
      .mutation(({ ctx, input }) => ctx.services.admin.moderation.unban(ctx.em, ctx.actor, input.userId)),
    /** GDPR erasure: the user's content goes and a pseudonym replaces their id in what remains. Idempotent. */
    erase: adminProcedure
      .input(AdminUserInput)
      .meta({ output: Erased })
      .mutation(({ ctx, input }) => ctx.services.admin.moderation.erase(ctx.em, ctx.actor, input.userId)),
  }),
  messages: router({
    /** Deletes a message for good, whoever sent it: a tombstone keeps its seq. */
    delete: adminProcedure
      .input(AdminDeleteMessageInput)
      .meta({ output: Message })
      .mutation(({ ctx, input }) => ctx.services.admin.moderation.deleteMessage(ctx.em, ctx.actor, input.messageId)),
  }),
  audit: router({
    /** Every admin action, newest first. */
    list: adminProcedure
      .input(ListAuditInput)
      .meta({ output: AuditPage })
      .query(({ ctx, input }) => ctx.services.admin.audit.list(ctx.em.getConnection(), input)),
  }),
});
