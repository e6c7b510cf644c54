package store

// Models are the tables' models. The schema is made by the versioned
// migrations (package migrations), not from these: TestEveryModelFieldHasAColumn
// checks that the two agree.
func Models() []any {
	return []any{&User{}, &Token{}, &Session{}, &Home{}, &BaseDomain{}, &Mapping{}, &CertificateOrder{}, &GuardRow{},
		&Invitation{}, &PasswordReset{}, &DeletedUser{}, &AuditRecord{}, &Edge{}}
}
