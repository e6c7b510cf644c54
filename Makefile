# The two commands of the README.
.PHONY: demo test
demo:
	./deploy/demo.sh
test:
	./deploy/test.sh
