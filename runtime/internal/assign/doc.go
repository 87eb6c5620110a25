// Package assign is the runtime's task assignor: a pure function from the
// group's members (what each owns, what each has state for) and the
// application's tasks to an assignment of active and standby tasks.
//
// It has no goroutines, no I/O and no clock, so every decision it makes can
// be replayed in a test. The kgo.GroupBalancer that carries its inputs and
// outputs over the consumer-group protocol lives in balancer.go.
//
// The assignment is:
//
//   - complete: every task is active on exactly one member once the
//     cooperative protocol has converged (at most one extra round);
//   - balanced: active task counts differ by at most one between members;
//   - sticky: a member keeps every task it owned unless it owns more than
//     its share; only the excess moves;
//   - cooperative: a task owned by one member is never handed to another in
//     the same round. It is withheld, the owner revokes it on sync and
//     rejoins, and the next round hands it over. So no task ever runs on two
//     members at once, and a member joining or leaving stops only the tasks
//     that move.
package assign
