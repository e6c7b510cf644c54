module homeport.dev/deploy

go 1.26.8
